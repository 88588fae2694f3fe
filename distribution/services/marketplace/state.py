"""The state a marketplace lead and its window are left in: the locks taken first (the lead
row, then contract rows in id order), status moves of unsold leads, and what a check does to
its window (finish it, schedule the next check, or wait for the batch)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crm.models import Contract
from distribution.loaders.marketplace import CAP_COLUMNS
from distribution.models import DistributionWindow, WindowStatus
from leads.models import DistributionState, Lead, LeadEvent, LeadStatus


def lock_contracts(ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Lock contract rows in id order (no deadlocks) and return their fresh sale fields.

    FOR NO KEY UPDATE: inserting an outbound lead (a foreign key to the contract) elsewhere
    does not wait for it, while two sales to the same contract are serialised.
    """
    rows = (
        Contract.objects.select_for_update(no_key=True)
        .filter(id__in=sorted(ids))
        .order_by("id")
        .values(
            "id",
            "price",
            "active",
            "paused",
            "max_share_count",
            *CAP_COLUMNS,
            "timezone",
        )
    )
    return {r["id"]: dict(r) for r in rows}


def lead_locked(lead_id: int, **filters: Any) -> Lead | None:
    return (
        Lead.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(pk=lead_id, **filters)
        .first()
    )


# Statuses a marketplace lead has before it is sold; an owned (agent) lead keeps its status.
UNSOLD = frozenset(
    {
        LeadStatus.PENDING,
        LeadStatus.WAITING,
        LeadStatus.UNASSIGNED,
        LeadStatus.EXCEPTION,
        LeadStatus.HELD,
        LeadStatus.PROSPECT,
    }
)


def set_status(lead: Lead, status: str, *, actor: Any = None, note: str = "") -> list[str]:
    if lead.status not in UNSOLD or not lead.can_transition_to(status):
        return []  # an agent's lead, or already there
    event = lead.transition_to(status, by=actor, note=note)
    if event is None:
        return []
    event.save()
    return ["status", "status_changed_at"]


def save_lead(lead: Lead, fields: list[str]) -> None:
    if fields:
        lead.save(update_fields=sorted({*fields, "updated_at"}))


def lead_waits(lead: Lead, *, state: str, note: str, actor: Any = None) -> None:
    """Leave LEAD in distribution STATE; one not sold yet waits for a buyer (`waiting`)."""
    lead.distribution_state = state
    fields = ["distribution_state"]
    if lead.status != LeadStatus.DISTRIBUTED:
        fields += set_status(lead, LeadStatus.WAITING, actor=actor, note=note)
    save_lead(lead, fields)


def note_event(*, lead_id: int, actor: Any, message: str, data: dict[str, Any]) -> None:
    """A note on the lead's timeline (window and return moves), by ACTOR when a user."""
    LeadEvent.objects.create(
        lead_id=lead_id,
        kind=LeadEvent.Kind.NOTE,
        actor=actor if getattr(actor, "pk", None) else None,
        message=message,
        data=data,
    )


def close_window(
    window: DistributionWindow,
    lead: Lead,
    *,
    status: str,
    reason: str,
    now: datetime,
    actor: Any = None,
) -> None:
    """Close a window; a lead that was not sold waits for a manager (manual distribution,
    a new window or cherry-picking)."""
    window.status = status
    window.closed_at = now
    window.close_reason = reason
    window.next_check_at = None
    window.save(
        update_fields=[
            "status",
            "closed_at",
            "close_reason",
            "next_check_at",
            "checks",
            "last_checked_at",
        ]
    )
    lead_waits(
        lead,
        state=DistributionState.DONE,
        note=f"window {status}: {reason.replace('_', ' ')}",
        actor=actor,
    )
    note_event(
        lead_id=lead.pk,
        actor=actor,
        message=f"Auto-distribution window {status} ({reason.replace('_', ' ')})",
        data={"window": window.pk, "status": status, "reason": reason},
    )


def settle(
    *, lead: Lead, window: DistributionWindow | None, room: int, now: datetime, actor: Any = None
) -> None:
    """After a check: finish a full window, schedule the next check, or end distribution."""
    if window is None:
        lead_waits(lead, state=DistributionState.DONE, note="no contract bought it", actor=actor)
        return
    window.checks += 1
    window.last_checked_at = now
    if room <= 0:
        close_window(
            window,
            lead,
            status=WindowStatus.FINISHED,
            reason="multiplication_reached",
            now=now,
            actor=actor,
        )
        return
    if window.status == WindowStatus.ACTIVE:
        window.next_check_at = min(now + window.every, window.ends_at)
    window.save(update_fields=["checks", "last_checked_at", "next_check_at"])
    lead_waits(
        lead, state=DistributionState.ACTIVE, note="in an auto-distribution window", actor=actor
    )


def wait_for_batch(
    *, lead: Lead, window: DistributionWindow, now: datetime, actor: Any = None
) -> None:
    """A batch-optimal window sells nothing by itself: it is due for the next batch."""
    window.next_check_at = now
    window.save(update_fields=["next_check_at"])
    lead_waits(
        lead,
        state=DistributionState.ACTIVE,
        note="waiting in a window for the batch allocation",
        actor=actor,
    )
