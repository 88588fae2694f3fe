"""Coordinates for leads sent without them: the place cache read in one query per batch,
and the offline postal-code table for the places the cache does not hold yet (reads only;
`services.geo` writes the cache and asks the geocoder)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db.models import Q

from distribution.engine.places import Place, place_of
from distribution.models import GeoPlace, PostalCode
from leads.models import Lead

# (latitude, longitude) in WGS84 degrees
Point = tuple[float, float]


def lead_places(leads: Iterable[Lead]) -> dict[int, tuple[Place, str]]:
    """Per lead without coordinates but with a postcode or city: its normalised place and
    the postcode as sent (no query)."""
    out: dict[int, tuple[Place, str]] = {}
    for lead in leads:
        if lead.latitude is not None and lead.longitude is not None:
            continue
        place = place_of(lead.country, lead.postcode, lead.city)
        if place is not None:
            out[lead.pk] = (place, lead.postcode or "")
    return out


def cached_points(keys: Iterable[str]) -> dict[str, Point | None]:
    """The cached places among KEYS (one query; None: looked up and unknown)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    return {
        key: (lat, lon) if lat is not None and lon is not None else None
        for key, lat, lon in GeoPlace.objects.filter(key__in=wanted).values_list(
            "key", "latitude", "longitude"
        )
    }


def table_points(places: Mapping[str, tuple[Place, str]]) -> dict[str, Point]:
    """The places the offline postal-code table knows (one query for them all).

    A postcode is matched under its candidates (the whole code first, then its first part);
    a place with no postcode match is matched by city within its country. Several rows
    for one match (a city with many postcodes) give their mean."""
    if not places:
        return {}
    cond = Q()
    for place, raw in places.values():
        for code in place.postal_candidates(raw):
            cond |= Q(country=place.country, postal_key=code)
        if place.city and place.country:
            cond |= Q(country=place.country, place_key=place.city)
    if not cond:
        return {}
    by_code: dict[tuple[str, str], list[Point]] = {}
    by_city: dict[tuple[str, str], list[Point]] = {}
    for country, code, name, lat, lon in PostalCode.objects.filter(cond).values_list(
        "country", "postal_key", "place_key", "latitude", "longitude"
    ):
        by_code.setdefault((country, code), []).append((lat, lon))
        by_city.setdefault((country, name), []).append((lat, lon))
    out: dict[str, Point] = {}
    for key, (place, raw) in places.items():
        found = next(
            (
                by_code[(place.country, code)]
                for code in place.postal_candidates(raw)
                if (place.country, code) in by_code
            ),
            None,
        )
        if found is None and place.city:
            found = by_city.get((place.country, place.city))
        if found:
            out[key] = (
                sum(p[0] for p in found) / len(found),
                sum(p[1] for p in found) / len(found),
            )
    return out


def lead_points(leads: Iterable[Lead]) -> dict[int, Point]:
    """Read-only coordinates of leads without them (pages, previews): the cache, then the
    table for places not cached yet; at most two queries, none for leads with coordinates."""
    places = lead_places(leads)
    if not places:
        return {}
    by_key = {place.key: (place, raw) for place, raw in places.values()}
    known = cached_points(by_key)
    missing = {k: v for k, v in by_key.items() if k not in known}
    points: dict[str, Point | None] = {**known, **table_points(missing)}
    out: dict[int, Point] = {}
    for lead_id, (place, _raw) in places.items():
        point = points.get(place.key)
        if point is not None:
            out[lead_id] = point
    return out
