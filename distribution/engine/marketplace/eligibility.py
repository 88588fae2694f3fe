"""Eligibility: why one contract may not receive a lead now (first failing check).

The rules with a threshold (dates, lead age, score; the share count in `shares`) are
defined once below as elementwise predicates over encoded values: Python numbers for one
contract in `check_contract`, numpy columns in the compiled `ContractTable`, which decides
the same checks for many contracts at once. The cap verdict is computed once per snapshot
(`ContractSnapshot.cap_reason`), delivery hours by `LeadContext.is_open` for both paths.
The manual check reuses `holds_lead` and the share-count rule of `selection.LeadState` for
its hard limits and `check_contract` for its advisory notes.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np

from distribution.engine.marketplace.explanation import codes_of
from distribution.engine.marketplace.geo import (
    SLACK_KM,
    SPHERE_HIGH,
    distance_km,
    great_circle_km,
    lower_bound_km,
)
from distribution.engine.marketplace.shares import tolerates
from distribution.engine.marketplace.types import (
    ContractSnapshot,
    DeliverySchedule,
    InboundLeadSnapshot,
    LocationPoint,
    Reason,
    require_aware,
)

if TYPE_CHECKING:
    from distribution.engine.marketplace.table import ContractTable

# Encodings of the thresholds (also the table's columns): a missing bound never binds.
MAX_I64 = int(np.iinfo(np.int64).max)
MIN_I64 = int(np.iinfo(np.int64).min)
MICROSECOND = timedelta(microseconds=1)
_Column = np.ndarray[Any, Any]


def day_number(day: date | None, missing: int) -> int:
    """A date as its ordinal (`missing` for no date: MIN_I64 for a start, MAX_I64 for an end)."""
    return day.toordinal() if day is not None else missing


def age_limit_us(max_lead_age: timedelta | None) -> int:
    """A maximum lead age in microseconds (MAX_I64: none)."""
    return min(max_lead_age // MICROSECOND, MAX_I64) if max_lead_age is not None else MAX_I64


@overload
def out_of_dates(today: int, starts: int, ends: int) -> bool: ...
@overload
def out_of_dates(today: int, starts: _Column, ends: _Column) -> _Column: ...
def out_of_dates(today: int, starts: Any, ends: Any) -> Any:
    """OUT_OF_DATES: today (a day number) lies before the start or after the end."""
    return (starts > today) | (ends < today)


@overload
def too_old(max_age_us: int, age_us: int) -> bool: ...
@overload
def too_old(max_age_us: _Column, age_us: int) -> _Column: ...
def too_old(max_age_us: Any, age_us: int) -> Any:
    """LEAD_TOO_OLD: the lead's age exceeds the maximum (both in microseconds)."""
    return max_age_us < age_us


@overload
def score_too_low(min_score: float, score: float | None) -> bool: ...
@overload
def score_too_low(min_score: _Column, score: float | None) -> _Column | bool: ...
def score_too_low(min_score: Any, score: float | None) -> Any:
    """SCORE_TOO_LOW where a minimum applies: no score, or a score below the minimum."""
    return score is None or score < min_score


class LeadContext:
    """Per-lead values computed once and shared by every contract check (and caches)."""

    __slots__ = (
        "age",
        "approx",
        "cos_lat",
        "count",
        "exact",
        "has_holders",
        "has_point",
        "holders_ok",
        "lat",
        "lat_r",
        "lead",
        "lon",
        "lon_r",
        "now",
        "open_cache",
        "share_limit",
        "today",
    )

    def __init__(self, lead: InboundLeadSnapshot, now: datetime) -> None:
        require_aware(now)
        self.lead = lead
        self.now = now
        self.today = now.date()
        # The lead's age, once (None for a naive created_at: the check then fails as before).
        created = lead.created_at
        self.age: timedelta | None = now - created if created.utcoffset() is not None else None
        self.count = lead.outbound_count
        self.share_limit = lead.share_limit
        # Whether any company or group holds the lead, and whether the contracts holding it
        # accept one more outbound lead (decided once).
        self.has_holders = bool(lead.received_company_ids or lead.received_group_ids)
        self.holders_ok = self.share_limit is None or tolerates(self.share_limit, self.count + 1)
        self.has_point = lead.latitude is not None and lead.longitude is not None
        self.lat = lead.latitude if lead.latitude is not None else 0.0
        self.lon = lead.longitude if lead.longitude is not None else 0.0
        self.lat_r = math.radians(self.lat)
        self.lon_r = math.radians(self.lon)
        self.cos_lat = math.cos(self.lat_r)
        self.approx: dict[int, list[tuple[float, LocationPoint]]] = {}
        self.exact: dict[int, float] = {}
        self.open_cache: dict[int, bool] = {}

    def spherical(self, contract: ContractSnapshot) -> list[tuple[float, LocationPoint]]:
        """Great-circle km to each location, nearest first (cached per contract)."""
        found = self.approx.get(contract.id)
        if found is None:
            lat, cos_lat, lon = self.lat_r, self.cos_lat, self.lon_r
            rad = contract.loc_rad
            found = [
                (great_circle_km(lat, cos_lat, lon, rad[2 * k], rad[2 * k + 1]), p)
                for k, p in enumerate(contract.locations)
            ]
            if len(found) > 1:
                found.sort(key=lambda pair: pair[0])
            self.approx[contract.id] = found
        return found

    def lower_bound(self, contract: ContractSnapshot) -> float:
        """A lower bound of the geodesic distance to the nearest location (inf: unknown)."""
        if not self.has_point or not contract.locations:
            return math.inf
        return lower_bound_km(self.spherical(contract)[0][0])

    def nearest(self, contract: ContractSnapshot) -> float:
        """Exact geodesic km to the nearest location (inf without coordinates/locations)."""
        found = self.exact.get(contract.id)
        if found is not None:
            return found
        best = math.inf
        if self.has_point:
            for approx, loc in self.spherical(contract):
                if lower_bound_km(approx) >= best:
                    break  # every further location is provably farther
                best = min(best, distance_km(self.lat, self.lon, loc))
        self.exact[contract.id] = best
        return best

    def within(self, contract: ContractSnapshot, radius: float) -> bool:
        """True when some location lies within `radius` km (geodesic, decided exactly)."""
        if not self.has_point:
            return False
        for approx, loc in self.spherical(contract):
            if lower_bound_km(approx) > radius:
                return False  # sorted: the rest are farther still
            if (
                approx * SPHERE_HIGH + SLACK_KM <= radius
                or distance_km(self.lat, self.lon, loc) <= radius
            ):
                return True
        return False

    def is_open(self, schedule: DeliverySchedule) -> bool:
        """Delivery-schedule check, cached per schedule object."""
        key = id(schedule)
        found = self.open_cache.get(key)
        if found is None:
            found = schedule.is_open(self.now)
            self.open_cache[key] = found
        return found


def already_holds(
    company_id: int, group_id: int | None, companies: Collection[int], groups: Collection[int]
) -> bool:
    """A buyer is never sold a lead twice: True when its company or its contract group is
    among the holders (or the ones chosen so far)."""
    return company_id in companies or (group_id is not None and group_id in groups)


def holds_lead(c: ContractSnapshot, lead: InboundLeadSnapshot) -> bool:
    """ALREADY_RECEIVED: the contract's company or group already holds the lead."""
    return already_holds(
        c.company_id, c.contract_group_id, lead.received_company_ids, lead.received_group_ids
    )


def check_contract(c: ContractSnapshot, ctx: LeadContext) -> Reason | None:
    """Why the contract may not receive the lead (None: it may), the first failing check.

    Cheap checks first; the geographic one last because it may need a geodesic.
    """
    lead = ctx.lead
    if lead.campaign is None:
        return Reason.NO_CAMPAIGN
    if not c.active:
        return Reason.INACTIVE
    if c.paused:
        return Reason.PAUSED
    if (c.starts is not None or c.ends is not None) and out_of_dates(
        ctx.today.toordinal(), day_number(c.starts, MIN_I64), day_number(c.ends, MAX_I64)
    ):
        return Reason.OUT_OF_DATES
    if c.campaign != lead.campaign:
        return Reason.OTHER_CAMPAIGN
    if ctx.has_holders and holds_lead(c, lead):
        return Reason.ALREADY_RECEIVED
    if not ctx.holders_ok or not tolerates(c.max_share_count, ctx.count + 1):
        return Reason.SHARE_COUNT_EXCEEDED
    if c.cap_reason is not None:
        return c.cap_reason
    if c.max_lead_age is not None and too_old(
        age_limit_us(c.max_lead_age),
        (ctx.age if ctx.age is not None else ctx.now - lead.created_at) // MICROSECOND,
    ):
        return Reason.LEAD_TOO_OLD
    if c.min_lead_score is not None and score_too_low(c.min_lead_score, lead.score):
        return Reason.SCORE_TOO_LOW
    if c.delivery_schedule is not None and not ctx.is_open(c.delivery_schedule):
        return Reason.OUTSIDE_DELIVERY_HOURS
    if c.radius_km is not None:
        if not ctx.has_point:
            return Reason.NO_COORDINATES
        lat, lon = ctx.lat, ctx.lon
        for lat_min, lat_max, lon_min, lon_max in c.area_boxes:
            if lat_min <= lat <= lat_max and lon_min <= lon <= lon_max:
                break
        else:  # outside every location's box: farther than the radius from each
            return Reason.OUT_OF_SERVICE_AREA
        if not ctx.within(c, c.radius_km):
            return Reason.OUT_OF_SERVICE_AREA
    return None


def contract_eligibility(
    contract: ContractSnapshot, lead: InboundLeadSnapshot, now: datetime
) -> Reason | None:
    """Why the contract may not receive the lead now, or None when it may."""
    return check_contract(contract, LeadContext(lead, now))


def eligible_contracts(
    lead: InboundLeadSnapshot, contracts: Sequence[ContractSnapshot], now: datetime
) -> tuple[ContractSnapshot, ...]:
    """The contracts that may receive the lead now, in id order."""
    screened = screen_each(lead, contracts, now)
    return tuple(screened.contracts[i] for i in screened.eligible)


class Screened(NamedTuple):
    """The eligibility of every contract for one lead (from `screen_each` or a table)."""

    ctx: LeadContext
    contracts: tuple[ContractSnapshot, ...]
    base: np.ndarray  # reason code per contract (0: eligible)
    eligible: list[int]
    ineligible: list[int]
    index_of: dict[int, int]
    table: ContractTable | None = None
    mask: np.ndarray | None = None  # eligible, with a table


def screen_each(
    lead: InboundLeadSnapshot, contracts: Sequence[ContractSnapshot], now: datetime
) -> Screened:
    """Eligibility of every contract, contract by contract, in id order (ids must be unique)."""
    ctx = LeadContext(lead, now)
    contracts = tuple(contracts)
    n = len(contracts)
    base: list[Reason | None] = [None] * n
    eligible: list[int] = []
    ineligible: list[int] = []
    index_of: dict[int, int] = {}
    ids = [c.id for c in contracts]
    for idx in sorted(range(n), key=ids.__getitem__):
        c = contracts[idx]
        if c.id in index_of:
            raise ValueError(f"contract id {c.id} passed twice")
        index_of[c.id] = idx
        why = check_contract(c, ctx)
        base[idx] = why
        (ineligible if why is not None else eligible).append(idx)
    return Screened(ctx, contracts, codes_of(base), eligible, ineligible, index_of)
