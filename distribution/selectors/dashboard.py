"""Figures for the managers' dashboard: a handful of aggregate queries, no per-row work."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.apps import apps
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from distribution.models import DistributionAttempt
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
