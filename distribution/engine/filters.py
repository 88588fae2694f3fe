"""Lead filters: ``field op value`` over lead columns and, failing those, attributes.

Comparison rules, chosen so that values typed in an admin form or a YAML file match what
ingestion stored:

* eq / ne / in / not_in / contains compare text case-insensitively and ignore surrounding
  blanks; when either side is a real number (not a string) both are compared as numbers, so
  ``company_size eq "50"`` matches 50 while postcode ``"01012"`` never equals ``"1012"``.
  A list-valued field (an attribute) matches eq / in when any element does.
* gt / gte / lt / lte compare numbers (numeric strings are coerced) or dates; a missing,
  empty or non-comparable value never matches.
* ne and not_in are the negations of eq and in, so they match a missing field.
* is_empty matches a missing field, None, blank text or an empty list (value ``false``
  inverts it). within_km measures the geodesic distance from the lead's latitude/longitude.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal

from geopy.distance import geodesic

from distribution.engine.types import Filter, LeadSnapshot, within_km_target

_KM_PER_DEGREE_LAT = 110.5  # a little under the true minimum, so the prefilter never lies


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, int | float):  # the common column values, before the ABC check
        return False
    if isinstance(value, list | tuple | set | frozenset | Mapping):
        return len(value) == 0
    return False


def _number(value: object, *, from_text: bool) -> float | None:
    """``value`` as a finite float; text only when ``from_text`` (booleans never)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif from_text and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _text(value: object) -> str:
    return str(value).strip().casefold()


def _equal(actual: object, expected: object) -> bool:
    if type(actual) is str and type(expected) is str:  # the common case, decided as below
        left, right = actual.strip(), expected.strip()
        if not left or not right:
            return not left and not right
        return left.casefold() == right.casefold()
    if _is_empty(actual) or _is_empty(expected):
        return _is_empty(actual) and _is_empty(expected)
    if isinstance(actual, list | tuple | set | frozenset):
        return any(_equal(item, expected) for item in actual)
    if (
        _number(actual, from_text=False) is not None
        or _number(expected, from_text=False) is not None
    ):
        a, b = _number(actual, from_text=True), _number(expected, from_text=True)
        if a is not None and b is not None:
            return a == b
    return _text(actual) == _text(expected)


def _choices(value: object) -> list[object]:
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def _order(actual: object, op: str, expected: object) -> bool:
    sign: int | None = None
    a, b = _number(actual, from_text=True), _number(expected, from_text=True)
    if a is not None and b is not None:
        sign = (a > b) - (a < b)
    elif (
        isinstance(actual, date)
        and isinstance(expected, date)
        # A datetime never compares with a bare date, nor an aware one with a naive one.
        and isinstance(actual, datetime) == isinstance(expected, datetime)
    ):
        try:
            sign = (actual > expected) - (actual < expected)
        except TypeError:
            return False
    if sign is None:
        return False
    if op == "gt":
        return sign > 0
    if op == "gte":
        return sign >= 0
    if op == "lt":
        return sign < 0
    if op == "lte":
        return sign <= 0
    raise KeyError(op)


def _within_km(lead: LeadSnapshot, value: object) -> bool:
    lat, lon, km = within_km_target(value)
    lead_lat = _number(lead.value("latitude")[1], from_text=True)
    lead_lon = _number(lead.value("longitude")[1], from_text=True)
    if lead_lat is None or lead_lon is None or not (-90 <= lead_lat <= 90):
        return False
    if abs(lead_lat - lat) * _KM_PER_DEGREE_LAT > km:
        return False  # cheap reject before the geodesic: latitude alone is too far
    distance: float = geodesic((lead_lat, lead_lon), (lat, lon)).km
    return distance <= km


def match_filter(flt: Filter, lead: LeadSnapshot) -> bool:
    """True when the lead satisfies one filter."""
    found, actual = lead.value(flt.field)
    op = flt.op
    if op == "eq":
        return found and _equal(actual, flt.value)
    if op == "ne":
        return not (found and _equal(actual, flt.value))
    if op == "in":
        return found and any(_equal(actual, choice) for choice in _choices(flt.value))
    if op == "not_in":
        return not (found and any(_equal(actual, choice) for choice in _choices(flt.value)))
    if op == "contains":
        if not found or _is_empty(actual) or _is_empty(flt.value):
            return False
        if isinstance(actual, list | tuple | set | frozenset):
            return any(_equal(item, flt.value) for item in actual)
        return _text(flt.value) in _text(actual)
    if op == "is_empty":
        wanted = flt.value is None or _truthy(flt.value)
        return _is_empty(actual) == wanted
    if op == "within_km":
        return _within_km(lead, flt.value)
    return found and not _is_empty(actual) and _order(actual, op, flt.value)


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() not in {"", "0", "false", "no", "off"}
    return bool(value)


def describe_failure(flt: Filter, lead: LeadSnapshot) -> str:
    """Why a filter failed, e.g. ``postcode eq '1012' (lead: '2000')``."""
    if flt.op == "within_km":
        lat = lead.value("latitude")[1]
        lon = lead.value("longitude")[1]
        return f"{flt.describe()} (lead at {lat!r}, {lon!r})"
    found, actual = lead.value(flt.field)
    shown = repr(actual) if found else "missing"
    return f"{flt.describe()} (lead: {shown})"


def match_filters(filters: Iterable[Filter], lead: LeadSnapshot) -> tuple[bool, list[str]]:
    """Whether the lead satisfies every filter, and a description of each that failed."""
    failed: list[str] = []
    for flt in filters:
        if not match_filter(flt, lead):
            failed.append(describe_failure(flt, lead))
    return not failed, failed
