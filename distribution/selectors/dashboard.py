"""Figures for the managers' dashboard: a handful of aggregate queries, no per-row work."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.apps import apps
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from distribution.db.speed import speed_to_lead
from distribution.models import DistributionAttempt
from distribution.selectors.pipeline import pipeline_report
from leads.models import Lead, LeadStatus

S = LeadStatus
GROUPS: dict[str, tuple[str, ...]] = {
    "assigned": (S.ASSIGNED, S.WORKING, S.CONTACTED, S.QUALIFIED, S.CONVERTED, S.LOST),
    "waiting": (S.PENDING, S.HELD, S.OFFERED, S.WAITING),
    "queued": (S.UNASSIGNED, S.EXCEPTION),
    "prospect": (S.PROSPECT,),
    "sold": (S.DISTRIBUTED,),
}


def _days(n: int) -> list[date]:
    today = timezone.localdate()
    return [today - timedelta(days=i) for i in range(n - 1, -1, -1)]


def dashboard_figures(*, days: int = 14) -> dict[str, Any]:
    """Lead flow per day by outcome, queues, sources, agents, attempts, turnover."""
    since = timezone.now() - timedelta(days=days)
    labels = _days(days)
    per_day = (
        Lead.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
    )
    series = {group: dict.fromkeys(labels, 0) for group in GROUPS}
    for row in per_day:
        for group, statuses in GROUPS.items():
            if row["status"] in statuses and row["day"] in series[group]:
                series[group][row["day"]] += row["n"]
    queues = Lead.objects.aggregate(
        unassigned=Count("id", filter=Q(status=S.UNASSIGNED)),
        exception=Count("id", filter=Q(status=S.EXCEPTION)),
        offered=Count("id", filter=Q(status=S.OFFERED)),
        held=Count("id", filter=Q(status=S.HELD)),
        waiting=Count("id", filter=Q(status=S.WAITING)),
        pending=Count("id", filter=Q(status=S.PENDING)),
    )
    sources = list(
        Lead.objects.filter(created_at__gte=since)
        .values("source__name")
        .annotate(n=Count("id"))
        .order_by("-n")[:10]
    )
    agents = list(
        Lead.objects.filter(assigned_at__gte=since, owner__isnull=False)
        .values("owner__email")
        .annotate(n=Count("id"))
        .order_by("-n")[:15]
    )
    outcomes = list(
        DistributionAttempt.objects.filter(created_at__gte=since)
        .values("outcome")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    figures: dict[str, Any] = {
        "labels": [d.isoformat() for d in labels],
        "series": {g: list(v.values()) for g, v in series.items()},
        "queues": queues,
        "sources": {(r["source__name"] or "(admin)"): r["n"] for r in sources},
        "agents": {r["owner__email"]: r["n"] for r in agents},
        "outcomes": {r["outcome"]: r["n"] for r in outcomes},
        "turnover": None,
    }
    if apps.is_installed("distribution") and _has_model("distribution", "OutboundLead"):
        outbound = apps.get_model("distribution", "OutboundLead")
        rows = (
            outbound.objects.filter(created_at__gte=since)
            .exclude(method="cherry_pick")
            .annotate(day=TruncDate("created_at"))
            .values("day")
            .annotate(total=Sum("price"))
        )
        by_day = {r["day"]: float(r["total"] or 0) for r in rows}
        figures["turnover"] = [by_day.get(d, 0.0) for d in labels]
    return figures


def _has_model(app_label: str, name: str) -> bool:
    try:
        apps.get_model(app_label, name)
    except LookupError:
        return False
    return True


SPEED_HOURS = 24


def dashboard_speed(*, now: datetime) -> dict[str, Any]:
    """Speed to lead (arrival → first offer or assignment) per arrival hour over the last
    24 hours, every hour present (an hour without leads has no figures): labels in local
    time, p50 / p90 in seconds for the chart, and the table's rows (1 query)."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=SPEED_HOURS - 1)
    measured = {h.hour: h for h in speed_to_lead(since=start, until=now)}
    rows = []
    for i in range(SPEED_HOURS):
        hour = start + timedelta(hours=i)
        figures = measured.get(hour)
        rows.append(
            {
                "hour": timezone.localtime(hour).strftime("%d %b %H:00"),
                "leads": figures.leads if figures else 0,
                "reached": figures.reached if figures else 0,
                "p50": None if not figures or figures.p50 is None else round(figures.p50, 1),
                "p90": None if not figures or figures.p90 is None else round(figures.p90, 1),
            }
        )
    return {
        "labels": [r["hour"] for r in rows],
        "p50": [r["p50"] for r in rows],
        "p90": [r["p90"] for r in rows],
        "rows": rows,
        "leads": sum(r["leads"] for r in rows),
    }


def dashboard_pipeline(*, now: datetime, depths: Mapping[str, int | str] | None) -> dict[str, Any]:
    """The pipeline's lag as /healthz reports it, with the failures past the thresholds
    (2 queries)."""
    figures, failures = pipeline_report(now=now, depths=depths)
    return {**figures, "failures": failures}
