"""Speed to lead per arrival hour: how long leads waited from arrival to their first offer
or assignment, as p50 / p90 per hour (the dashboard's chart and table)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import DateTimeField, Min, OuterRef, Subquery

from distribution.models import Assignment, Offer
from leads.models import Lead


@dataclass(frozen=True)
class HourSpeed:
    hour: datetime  # the arrival hour's start, UTC
    leads: int  # leads that arrived in that hour
    reached: int  # of them, offered or assigned since
    p50: float | None  # seconds from arrival to the first offer or assignment
    p90: float | None


def speed_to_lead(*, since: datetime, until: datetime) -> list[HourSpeed]:
    """Per UTC hour of arrival in [SINCE, UNTIL) with at least one lead, oldest first: the
    leads, how many were reached, and the p50 / p90 (linear interpolation, PostgreSQL's
    `percentile_cont`) of their seconds to the first offer or assignment, never negative
    (1 query)."""
    if connection.vendor == "postgresql":
        return _pg(since=since, until=until)
    return _portable(since=since, until=until)


def _pg(*, since: datetime, until: datetime) -> list[HourSpeed]:
    qn = connection.ops.quote_name
    lead, offer, assignment = (qn(m._meta.db_table) for m in (Lead, Offer, Assignment))
    sql = f"""
        WITH firsts AS (
            SELECT l.created_at,
                   LEAST(  -- LEAST and GREATEST skip NULLs: never offered, or never assigned
                       (SELECT MIN(o.created_at) FROM {offer} o WHERE o.lead_id = l.id),
                       (SELECT MIN(a.created_at) FROM {assignment} a WHERE a.lead_id = l.id)
                   ) AS first_at
            FROM {lead} l
            WHERE l.created_at >= %s AND l.created_at < %s
        ), waits AS (
            SELECT created_at, CASE WHEN first_at IS NOT NULL
                THEN GREATEST(0, EXTRACT(EPOCH FROM first_at - created_at)) END AS wait
            FROM firsts
        )
        SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AS hour,
               count(*), count(wait),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY wait),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY wait)
        FROM waits GROUP BY 1 ORDER BY 1
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [since, until])
        rows = cursor.fetchall()
    return [
        HourSpeed(
            hour=hour.replace(tzinfo=UTC),
            leads=int(leads),
            reached=int(reached),
            p50=None if p50 is None else float(p50),
            p90=None if p90 is None else float(p90),
        )
        for hour, leads, reached, p50, p90 in rows
    ]


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's `percentile_cont`: the value at (n - 1) × FRACTION of the sorted VALUES,
    interpolated linearly between its neighbours; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _portable(*, since: datetime, until: datetime) -> list[HourSpeed]:
    """The same figures from one ORM query (each lead's first offer and first assignment as
    subqueries), the hours and percentiles computed here."""

    def first(model: type[Offer] | type[Assignment]) -> Subquery:
        rows = (
            model.objects.filter(lead=OuterRef("pk"))
            .order_by()
            .values("lead")
            .annotate(first=Min("created_at"))
            .values("first")
        )
        return Subquery(rows, output_field=DateTimeField())

    rows = (
        Lead.objects.filter(created_at__gte=since, created_at__lt=until)
        .order_by()
        .annotate(first_offer=first(Offer), first_assignment=first(Assignment))
        .values_list("created_at", "first_offer", "first_assignment")
    )
    hours: dict[datetime, tuple[list[int], list[float]]] = {}
    for created_at, first_offer, first_assignment in rows:
        hour = created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        counted, waits = hours.setdefault(hour, ([0], []))
        counted[0] += 1
        reached = [t for t in (first_offer, first_assignment) if t is not None]
        if reached:
            waits.append(max(0.0, (min(reached) - created_at) / timedelta(seconds=1)))
    return [
        HourSpeed(
            hour=hour,
            leads=counted[0],
            reached=len(waits),
            p50=percentile_cont(waits, 0.5),
            p90=percentile_cont(waits, 0.9),
        )
        for hour, (counted, waits) in sorted(hours.items())
    ]
