"""Thin Celery tasks of the marketplace: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from distribution import services


@shared_task(name="distribution.recheck_windows")
def recheck_windows() -> dict[str, int]:
    """Recheck every due auto-distribution window (Beat, every minute)."""
    return services.windows_recheck_due()


@shared_task(
    name="distribution.recheck_window",
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=3,
)
def recheck_window(window_id: int) -> str | None:
    """Recheck one window now if it is due (a recheck already running elsewhere wins)."""
    attempt = services.window_recheck(window_id=window_id)
    return attempt.outcome if attempt is not None else None
