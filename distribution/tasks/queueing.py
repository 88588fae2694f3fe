"""Thin Celery tasks: take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from distribution import services
from distribution.services.queueing import lead_dispatch_arrival

from .retry import RETRY_WITH_BACKOFF


@shared_task(name="distribution.distribute_lead", max_retries=5, **RETRY_WITH_BACKOFF)
def distribute_lead(lead_id: int, trigger: str = "arrival", lane: str | None = None) -> str | None:
    """Distribute one lead, by the marketplace or agent routing — an arrival together with
    the other leads of its LANE pending now (idempotent: an already distributed lead is
    left alone)."""
    attempt = lead_dispatch_arrival(lead_id=lead_id, trigger=trigger, lane=lane)
    return attempt.outcome if attempt is not None else None


# Beat sends the sweep every 30 s; a sweep still queued after SWEEP_EXPIRES (the worker is
# behind) is dropped by the worker instead of running late, one after another.
SWEEP_EXPIRES = 25


@shared_task(name="distribution.requeue_pending", expires=SWEEP_EXPIRES)
def requeue_pending() -> int:
    """Re-queue leads still pending after the grace period, each once per window."""
    return services.leads_requeue_stale()
