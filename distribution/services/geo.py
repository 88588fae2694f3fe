"""Coordinates for leads sent with a postcode / city / country but none of their own.

Looked up in the worker that sells the lead (never in the ingestion request): the place
cache first (one query per batch), then the offline postal-code table, then — when
`GEOCODER` names one — geopy's geocoder, once per distinct place; every answer, found or
not, is cached (`GeoPlace`), so one place is looked up once. See docs/decisions.md G1."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import DomainError
from distribution.engine.places import Place, place_key, postal_key
from distribution.loaders.geo import Point, cached_points, lead_places, table_points
from distribution.models import GeoPlace, PlaceSource, PostalCode
from leads.models import Lead

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _geocoder(name: str, api_key: str, url: str, timeout: float, user_agent: str) -> Any:
    """geopy's geocoder NAME (nominatim, photon, pelias, opencage, googlev3, …), built from
    the settings it accepts; URL points it at a self-hosted server (`http://host:port`)."""
    from geopy.geocoders import get_geocoder_for_service

    cls = get_geocoder_for_service(name)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {"timeout": timeout}
    if "user_agent" in accepted:
        kwargs["user_agent"] = user_agent
    if api_key and "api_key" in accepted:
        kwargs["api_key"] = api_key
    if url:
        scheme, _, domain = url.partition("://")
        if not domain:
            scheme, domain = "https", url
        if "domain" in accepted:
            kwargs["domain"] = domain.rstrip("/")
        if "scheme" in accepted:
            kwargs["scheme"] = scheme
    return cls(**kwargs)


def geocoder() -> Any | None:
    """The configured geocoder, or None (`GEOCODER` empty: off, the default)."""
    name = (getattr(settings, "GEOCODER", "") or "").strip().lower()
    if not name:
        return None
    return _geocoder(
        name,
        getattr(settings, "GEOCODER_API_KEY", "") or "",
        getattr(settings, "GEOCODER_URL", "") or "",
        float(getattr(settings, "GEOCODER_TIMEOUT", 5.0)),
        getattr(settings, "GEOCODER_USER_AGENT", "leadrouter"),
    )


class GeocoderUnavailable(Exception):
    """The geocoder did not answer (the place is not cached: the next lead asks again)."""


def geocode_place(client: Any, place: Place, raw_postcode: str) -> Point | None:
    """Ask the geocoder for a place: a structured query where the geocoder takes one
    (Nominatim), else one line "postcode city, country". None: it does not know it."""
    from geopy.exc import GeopyError
    from geopy.geocoders import Nominatim

    try:
        if isinstance(client, Nominatim):
            query: dict[str, str] = {}
            if place.postcode:
                query["postalcode"] = raw_postcode.strip() or place.postcode
            if place.city:
                query["city"] = place.city
            kwargs: dict[str, Any] = {"country_codes": place.country} if place.country else {}
            found = client.geocode(query, exactly_one=True, **kwargs)
        else:
            line = " ".join(p for p in (raw_postcode.strip() or place.postcode, place.city) if p)
            found = client.geocode(
                f"{line}, {place.country}" if place.country else line, exactly_one=True
            )
    except GeopyError as exc:
        raise GeocoderUnavailable(str(exc)) from exc
    if found is None:
        return None
    return (float(found.latitude), float(found.longitude))


def lead_points_resolve(leads: Iterable[Lead], *, geocode: bool = True) -> dict[int, Point]:
    """Coordinates for the leads of a batch that have none, by lead id (leads whose place
    nobody knows are absent: their selection says `no_coordinates`).

    1. The place cache: one query for the whole batch (none when every lead has
       coordinates) — the usual case once a place has been seen.
    2. Places not cached: the postal-code table (one query for them all), then the
       geocoder for those it does not know, one request per distinct place (GEOCODE false:
       the table only, e.g. in a manager's request).
    3. Every answer is cached in one statement: a table's, and a geocoder's found or not
       (a place nobody was asked about, or a geocoder that did not answer, is not: it is
       looked up again next time).
    """
    places = lead_places(leads)
    if not places:
        return {}
    by_key = {place.key: (place, raw) for place, raw in places.values()}
    points: dict[str, Point | None] = cached_points(by_key)
    missing = {k: v for k, v in by_key.items() if k not in points}
    if missing:
        now = timezone.now()
        new: list[GeoPlace] = []
        from_table = table_points(missing)
        client = geocoder() if geocode else None
        for key, (place, raw) in missing.items():
            point: Point | None = from_table.get(key)
            source = PlaceSource.TABLE
            if point is None:
                if client is None:  # not cached: a table loaded later still answers
                    points[key] = None
                    continue
                try:
                    point = geocode_place(client, place, raw)
                except GeocoderUnavailable as exc:
                    log.warning("geocoder unavailable for %s: %s", key, exc)
                    points[key] = None
                    continue
                source = PlaceSource.GEOCODER if point is not None else PlaceSource.UNKNOWN
            points[key] = point
            new.append(_row(key, place, point, source, now))
        if new:
            with transaction.atomic():  # a savepoint: a conflict never breaks the sale
                GeoPlace.objects.bulk_create(new, ignore_conflicts=True)
    out: dict[int, Point] = {}
    for lead_id, (place, _raw) in places.items():
        found = points.get(place.key)
        if found is not None:
            out[lead_id] = found
    return out


def _row(key: str, place: Place, point: Point | None, source: str, now: Any) -> GeoPlace:
    return GeoPlace(
        key=key,
        country=place.country,
        postcode=place.postcode,
        city=place.city[:120],
        latitude=point[0] if point else None,
        longitude=point[1] if point else None,
        source=source,
        looked_up_at=now,
    )


# --------------------------------------------------------------------------- the table


class PostalFileError(DomainError):
    """The postal-code file is not in GeoNames' format."""

    code = "bad_postal_file"


# GeoNames postal-code files (download.geonames.org/export/zip/): tab-separated, UTF-8,
# country code, postal code, place name, admin name1, admin code1, admin name2, admin
# code2, admin name3, admin code3, latitude, longitude, accuracy (1 estimated … 6 centroid).
GEONAMES_COLUMNS = 12
_BATCH = 5000


def _postal_row(fields: list[str], line_no: int) -> PostalCode | None:
    if len(fields) < 11:
        raise PostalFileError(
            f"line {line_no}: {len(fields)} tab-separated columns; a GeoNames postal-code "
            f"file has {GEONAMES_COLUMNS} (country, postal code, place, admin names and "
            "codes, latitude, longitude, accuracy)."
        )
    country, code, name, admin1 = (f.strip() for f in fields[:4])
    try:
        lat, lon = float(fields[9]), float(fields[10])
    except ValueError as exc:
        raise PostalFileError(f"line {line_no}: latitude/longitude are not numbers.") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PostalFileError(f"line {line_no}: coordinates out of range.")
    if len(country) != 2 or not code:
        return None  # GeoNames has a few rows without a code: nothing to match them by
    accuracy = fields[11].strip() if len(fields) > 11 else ""
    return PostalCode(
        country=country.upper(),
        postal_code=code[:20],
        postal_key=postal_key(code)[:20],
        place_name=name[:180],
        place_key=place_key(name)[:180],
        admin_name1=admin1[:100],
        latitude=lat,
        longitude=lon,
        accuracy=int(accuracy) if accuracy.isdigit() else None,
    )


def postal_codes_load(*, lines: Iterable[str], append: bool = False) -> dict[str, int]:
    """Load a GeoNames postal-code file (its lines) into the offline table, in one
    transaction: the rows of each country in the file replace that country's rows (a file
    loaded twice is loaded once; APPEND keeps them), and the cached places of those
    countries that came from the table or were unknown are forgotten, so the new table
    answers from the next sale on. Returns counts: rows, countries, skipped, forgotten."""
    rows = skipped = 0
    countries: set[str] = set()
    batch: list[PostalCode] = []
    with transaction.atomic():
        for line_no, line in enumerate(lines, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            row = _postal_row(text.split("\t"), line_no)
            if row is None:
                skipped += 1
                continue
            if row.country not in countries:
                countries.add(row.country)
                if not append:
                    PostalCode.objects.filter(country=row.country).delete()
            batch.append(row)
            if len(batch) >= _BATCH:
                PostalCode.objects.bulk_create(batch)
                rows += len(batch)
                batch = []
        if batch:
            PostalCode.objects.bulk_create(batch)
            rows += len(batch)
        forgotten, _ = (
            GeoPlace.objects.filter(
                country__in=sorted(countries),
                source__in=[PlaceSource.TABLE, PlaceSource.UNKNOWN],
            ).delete()
            if countries
            else (0, {})
        )
    return {"rows": rows, "countries": len(countries), "skipped": skipped, "forgotten": forgotten}
