"""Thin Celery tasks: take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from distribution import services


@shared_task(
    name="distribution.distribute_lead",
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def distribute_lead(lead_id: int, trigger: str = "arrival") -> str | None:
    """Distribute one lead, by the marketplace or agent routing (idempotent: an already
    distributed lead is left alone)."""
    attempt = services.lead_dispatch(lead_id=lead_id, trigger=trigger)
    return attempt.outcome if attempt is not None else None


@shared_task(name="distribution.requeue_pending")
def requeue_pending() -> int:
    """Re-queue leads still pending after the grace period."""
    return services.leads_requeue_stale()
