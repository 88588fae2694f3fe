"""Auto-distribution windows: open one for a lead, recheck the due ones (a batch-optimal
workflow allocates all of its windows at once), pause, resume, edit and stop them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from distribution.engine import marketplace as engine
from distribution.errors import MarketplaceError
from distribution.loaders.marketplace import lead_snapshot, outbound_records, workflow_snapshot
from distribution.models import DistributionAttempt, DistributionWindow, WindowStatus
from distribution.selectors.marketplace import window_open_for_lead, workflow_for_campaign
from distribution.services.marketplace.batch import workflow_allocate_batch
from distribution.services.marketplace.history import REASON_TEXT
from distribution.services.marketplace.sale import sell
from distribution.services.marketplace.state import (
    close_window,
    lead_locked,
    note_event,
    settle,
    wait_for_batch,
)
from leads.models import LeadEvent

Trigger = DistributionAttempt.Trigger


def _windows_due(
    *, now: datetime | None = None, limit: int = 500
) -> list[tuple[int, int | None, bool]]:
    """Active windows whose next check is due, oldest due first, as (window id, workflow
    id, whether the workflow is batch-optimal)."""
    now = now or timezone.now()
    rows = (
        DistributionWindow.objects.filter(status="active", next_check_at__lte=now)
        .order_by("next_check_at", "id")
        .values_list(
            "id", "lead__campaign__workflow__id", "lead__campaign__workflow__batch_optimal"
        )[:limit]
    )
    return [(wid, wf, bool(batch)) for wid, wf, batch in rows]


def _window_locked(
    window_id: int, *statuses: str, skip_locked: bool = False
) -> DistributionWindow | None:
    qs = DistributionWindow.objects.select_for_update(skip_locked=skip_locked)
    return qs.filter(pk=window_id, status__in=statuses).first()


def window_recheck(
    *, window_id: int, now: datetime | None = None, trigger: str = Trigger.RECHECK
) -> DistributionAttempt | None:
    """Recheck a due window for newly eligible contracts; finish it when the lead is full
    or the window has ended. Not due, not active or being rechecked elsewhere: nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        window = _window_locked(window_id, WindowStatus.ACTIVE, skip_locked=True)
        if window is None or (window.next_check_at is not None and window.next_check_at > now):
            return None
        lead = lead_locked(window.lead_id)
        assert lead is not None  # the window's foreign key cascades
        workflow = workflow_for_campaign(campaign_id=lead.campaign_id)
        if now >= window.ends_at:
            close_window(window, lead, status=WindowStatus.FINISHED, reason="ended", now=now)
            return None
        if workflow is None or lead.campaign_id is None:
            close_window(window, lead, status=WindowStatus.FINISHED, reason="no_workflow", now=now)
            return None
        attempt, room = sell(lead=lead, workflow=workflow, trigger=trigger, now=now, window=window)
        settle(lead=lead, window=window, room=room, now=now)
        return attempt


def windows_recheck_due(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Recheck every due window; a batch-optimal workflow allocates all its windows at once.

    Returns counts of outcomes.
    """
    now = now or timezone.now()
    counts: dict[str, int] = {}
    due = _windows_due(now=now, limit=limit)
    for workflow_id in sorted({wf for _, wf, batch in due if batch and wf is not None}):
        result = workflow_allocate_batch(workflow_id=workflow_id, now=now)
        for key in ("distributed", "not_distributed", "finished"):
            if result.get(key):
                counts[key] = counts.get(key, 0) + int(result[key])
    for window_id, wf, batch in due:
        if batch and wf is not None:
            continue
        try:
            attempt = window_recheck(window_id=window_id, now=now)
        except MarketplaceError:
            attempt = None
        key = attempt.outcome if attempt is not None else "closed_or_skipped"
        counts[key] = counts.get(key, 0) + 1
    return counts


def window_open(
    *,
    lead_id: int,
    actor: Any = None,
    duration: timedelta | None = None,
    every: timedelta | None = None,
    now: datetime | None = None,
) -> DistributionWindow:
    """Give a lead outside a window a new auto-distribution window and check it at once.

    The lead needs a campaign with a workflow (its selection rules choose the contracts);
    duration and interval default to the workflow's.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lead = lead_locked(lead_id)
        if lead is None:
            raise MarketplaceError("not_found", "No such lead.")
        if lead.campaign_id is None:
            raise MarketplaceError("no_campaign", REASON_TEXT["no_campaign"])
        workflow = workflow_for_campaign(campaign_id=lead.campaign_id)
        if workflow is None:
            raise MarketplaceError(
                "no_workflow", "The lead's campaign has no workflow with contract selection rules."
            )
        if window_open_for_lead(lead_id=lead.pk) is not None:
            raise MarketplaceError(
                "window_open", "The lead is already in a window: pause, edit or stop it instead."
            )
        records = outbound_records(lead_ids=[lead.pk]).get(lead.pk, [])
        if engine.remaining_room(lead_snapshot(lead, records), workflow_snapshot(workflow)) <= 0:
            raise MarketplaceError(
                "multiplication_reached",
                REASON_TEXT["multiplication_reached"] + " A window would find nothing to do.",
            )
        length = duration or workflow.window_length
        step = every or workflow.window_every
        if length.total_seconds() <= 0 or step.total_seconds() <= 0:
            raise MarketplaceError("invalid", "Duration and interval must be positive.")
        window = DistributionWindow.objects.create(
            lead=lead,
            started_at=now,
            ends_at=now + length,
            every=step,
            next_check_at=now,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.NOTE,
            actor=window.created_by,
            message=f"Auto-distribution window added until {window.ends_at:%Y-%m-%d %H:%M}",
            data={"window": window.pk},
        )
        if workflow.batch_optimal:
            wait_for_batch(lead=lead, window=window, now=now, actor=actor)
            return window
        _attempt, room = sell(
            lead=lead,
            workflow=workflow,
            trigger=Trigger.MANUAL,
            now=now,
            actor=actor,
            window=window,
        )
        settle(lead=lead, window=window, room=room, now=now, actor=actor)
        return window


def _window_move(
    window_id: int,
    *,
    was: str,
    to: str,
    next_check_at: datetime | None,
    refused: MarketplaceError,
    actor: Any,
    what: str,
) -> DistributionWindow:
    """Move a window in status WAS to status TO (pause / resume), with its next check."""
    with transaction.atomic():
        window = _window_locked(window_id, was)
        if window is None:
            raise refused
        window.status = to
        window.next_check_at = next_check_at
        window.save(update_fields=["status", "next_check_at"])
        _window_event(window, actor, what)
        return window


def window_pause(
    *, window_id: int, actor: Any = None, now: datetime | None = None
) -> DistributionWindow:
    """Pause an active window: no rechecks until it is resumed (its end stays)."""
    return _window_move(
        window_id,
        was=WindowStatus.ACTIVE,
        to=WindowStatus.PAUSED,
        next_check_at=None,
        refused=MarketplaceError("not_active", "Only an active window can be paused."),
        actor=actor,
        what="paused",
    )


def window_resume(
    *, window_id: int, actor: Any = None, now: datetime | None = None
) -> DistributionWindow:
    """Resume a paused window; it is rechecked at once."""
    return _window_move(
        window_id,
        was=WindowStatus.PAUSED,
        to=WindowStatus.ACTIVE,
        next_check_at=now or timezone.now(),
        refused=MarketplaceError("not_paused", "Only a paused window can be resumed."),
        actor=actor,
        what="resumed",
    )


def window_stop(
    *, window_id: int, actor: Any = None, now: datetime | None = None
) -> DistributionWindow:
    """Stop an active or paused window for good; the lead leaves automatic distribution."""
    now = now or timezone.now()
    with transaction.atomic():
        window = _window_locked(window_id, WindowStatus.ACTIVE, WindowStatus.PAUSED)
        if window is None:
            raise MarketplaceError("not_open", "The window is already stopped or finished.")
        lead = lead_locked(window.lead_id)
        assert lead is not None
        close_window(
            window, lead, status=WindowStatus.STOPPED, reason="stopped", now=now, actor=actor
        )
        return window


def window_edit(
    *,
    window_id: int,
    actor: Any = None,
    ends_at: datetime | None = None,
    every: timedelta | None = None,
    now: datetime | None = None,
) -> DistributionWindow:
    """Change an open window's end and recheck interval."""
    now = now or timezone.now()
    with transaction.atomic():
        window = _window_locked(window_id, WindowStatus.ACTIVE, WindowStatus.PAUSED)
        if window is None:
            raise MarketplaceError("not_open", "Only an active or paused window can be edited.")
        if ends_at is not None and ends_at <= now:
            raise MarketplaceError("invalid", "The new end must be in the future.")
        if every is not None and every.total_seconds() <= 0:
            raise MarketplaceError("invalid", "The interval must be positive.")
        window.ends_at = ends_at or window.ends_at
        window.every = every or window.every
        if window.status == WindowStatus.ACTIVE:
            base = window.last_checked_at or now
            window.next_check_at = min(max(base + window.every, now), window.ends_at)
        window.save(update_fields=["ends_at", "every", "next_check_at"])
        _window_event(
            window, actor, f"edited: ends {window.ends_at:%Y-%m-%d %H:%M}, every {window.every}"
        )
        return window


def _window_event(window: DistributionWindow, actor: Any, what: str) -> None:
    note_event(
        lead_id=window.lead_id,
        actor=actor,
        message=f"Auto-distribution window {what}",
        data={"window": window.pk},
    )
