"""Thin Celery tasks of the marketplace: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from distribution import services


@shared_task(name="distribution.recheck_windows")
def recheck_windows() -> dict[str, int]:
    """Recheck every due auto-distribution window (Beat, every minute)."""
    return services.windows_recheck_due()
