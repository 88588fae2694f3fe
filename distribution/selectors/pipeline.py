"""The database side of the pipeline's lag: the oldest pending lead and the oldest due timer.

Every timer is a row (DESIGN §8): an open offer past its `expires_at`, a held lead past its
`held_until`, an owned lead past its contact-SLA `sla_due_at`, an active marketplace window
past its `next_check_at`. Each is read the way its sweeper selects it, through that
sweeper's (partial) index, so the figures cost the same with ten leads or ten million.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Value

from distribution.models import DistributionWindow, Offer
from leads.models import DistributionState, Lead, LeadStatus


@dataclass(frozen=True)
class PendingLag:
    count: int
    oldest_at: datetime | None


@dataclass(frozen=True)
class TimerLag:
    kind: str  # offer | held | sla | window
    count: int  # rows of that kind due now
    oldest_due_at: datetime | None


TIMER_KINDS = ("offer", "held", "sla", "window")


def pipeline_pending(*, now: datetime) -> PendingLag:
    """How many leads wait to be distributed, and when the oldest arrived (1 query)."""
    row = Lead.objects.filter(
        distribution_state=DistributionState.PENDING, created_at__lte=now
    ).aggregate(count=Count("id"), oldest=Min("created_at"))
    return PendingLag(count=int(row["count"] or 0), oldest_at=row["oldest"])


def pipeline_timers(*, now: datetime) -> list[TimerLag]:
    """Each kind of timer row that is due at NOW: how many, and the oldest due time, in
    TIMER_KINDS order (1 query: one aggregate per kind, UNION ALL)."""
    due = [
        Offer.objects.filter(status=Offer.Status.OPEN, expires_at__lte=now)
        .order_by()
        .annotate(kind=Value("offer"))
        .values_list("kind")
        .annotate(n=Count("id"), oldest=Min("expires_at")),
        Lead.objects.filter(status=LeadStatus.HELD, held_until__lte=now)
        .order_by()
        .annotate(kind=Value("held"))
        .values_list("kind")
        .annotate(n=Count("id"), oldest=Min("held_until")),
        Lead.objects.filter(sla_due_at__lte=now, owner__isnull=False)
        .order_by()
        .annotate(kind=Value("sla"))
        .values_list("kind")
        .annotate(n=Count("id"), oldest=Min("sla_due_at")),
        DistributionWindow.objects.filter(status="active", next_check_at__lte=now)
        .order_by()
        .annotate(kind=Value("window"))
        .values_list("kind")
        .annotate(n=Count("id"), oldest=Min("next_check_at")),
    ]
    rows = due[0].union(*due[1:], all=True)
    found = {str(kind): (int(n or 0), oldest) for kind, n, oldest in rows}
    return [
        TimerLag(kind=kind, count=found[kind][0], oldest_due_at=found[kind][1])
        if kind in found
        else TimerLag(kind=kind, count=0, oldest_due_at=None)
        for kind in TIMER_KINDS
    ]


def oldest_due_timer(timers: list[TimerLag]) -> TimerLag | None:
    """The timer kind whose oldest due row is the most overdue, if any is due."""
    due = [(t.oldest_due_at, t) for t in timers if t.oldest_due_at is not None]
    return min(due, key=lambda pair: pair[0])[1] if due else None


def _seconds(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round(max(0.0, (now - since).total_seconds()), 3)


def pipeline_report(
    *, now: datetime, depths: Mapping[str, int | str] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The pipeline's lag against the HEALTH_MAX_* settings: (figures, failures by name).

    DEPTHS are the broker's queue depths (None when the broker could not be read: no queue
    figure, and no queue failure either — the broker check names that). Failures are named
    `pending`, `timers` and `queues`, each with a sentence saying what is late and by how
    much (2 queries)."""
    max_age = float(settings.HEALTH_MAX_PENDING_AGE)
    max_lag = float(settings.HEALTH_MAX_TIMER_LAG)
    max_depth = int(settings.HEALTH_MAX_QUEUE_DEPTH)
    failures: dict[str, str] = {}

    pending = pipeline_pending(now=now)
    age = _seconds(pending.oldest_at, now)
    if age is not None and age > max_age:
        failures["pending"] = (
            f"the oldest of {pending.count} pending leads is {age:.0f} s old "
            f"(threshold {max_age:.0f} s)"
        )

    timers = pipeline_timers(now=now)
    oldest = oldest_due_timer(timers)
    lag = _seconds(oldest.oldest_due_at, now) if oldest else None
    if oldest is not None and lag is not None and lag > max_lag:
        failures["timers"] = (
            f"{TIMER_LABELS[oldest.kind]} is {lag:.0f} s overdue "
            f"({oldest.count} {oldest.kind} timer(s) due; threshold {max_lag:.0f} s)"
        )

    queues: dict[str, Any] | None = None
    if depths is not None:
        deep = {name: n for name, n in depths.items() if isinstance(n, int) and n > max_depth}
        if deep:
            failures["queues"] = (
                ", ".join(f"queue {name} holds {n} messages" for name, n in deep.items())
                + f" (threshold {max_depth})"
            )
        queues = {"depth": dict(depths), "max_depth": max_depth}

    figures: dict[str, Any] = {
        "pending": {"count": pending.count, "oldest_age_s": age, "max_age_s": max_age},
        "timers": {
            "oldest": None if oldest is None else {"kind": oldest.kind, "lag_s": lag},
            "due": {
                t.kind: {"count": t.count, "lag_s": _seconds(t.oldest_due_at, now)} for t in timers
            },
            "max_lag_s": max_lag,
        },
        "queues": queues,
    }
    return figures, failures


TIMER_LABELS = {
    "offer": "an open offer past its expiry",
    "held": "a held lead past its release time",
    "sla": "an assigned lead past its contact SLA",
    "window": "a marketplace window recheck",
}
