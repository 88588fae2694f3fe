"""Thin Celery tasks of the marketplace: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from distribution import services


@shared_task(name="distribution.recheck_windows")
def recheck_windows() -> dict[str, int]:
    """Recheck every due auto-distribution window (Beat, every minute)."""
    return services.windows_recheck_due()


@shared_task(name="distribution.deliver_outbound")
def deliver_outbound(outbound_id: int) -> str | None:
    """One due delivery of an outbound lead, queued when its sale commits (timers lane)."""
    return services.outbound_deliver(outbound_id=outbound_id)


@shared_task(name="distribution.deliver_pending")
def deliver_pending() -> dict[str, int]:
    """Every delivery that is due: retries whose wait has passed, first sends whose task
    was lost (Beat, every 15 seconds)."""
    return services.deliver_pending()
