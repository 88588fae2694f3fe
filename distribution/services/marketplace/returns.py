"""Returns of outbound leads: a buyer requests one with a reason, a manager approves (the
cap and budget are credited) or denies it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from distribution.errors import MarketplaceError
from distribution.models import DeliveryStatus, OutboundLead, ReturnStatus
from distribution.services.marketplace.state import note_event


def _outbound_locked(outbound_id: int) -> OutboundLead:
    outbound = (
        OutboundLead.objects.select_for_update(of=("self",))
        .select_related("contract")
        .filter(pk=outbound_id)
        .first()
    )
    if outbound is None:
        raise MarketplaceError("not_found", "No such outbound lead.")
    return outbound


def outbound_return_request(
    *, outbound_id: int, reason: str, actor: Any = None, now: datetime | None = None
) -> OutboundLead:
    """A buyer returns an outbound lead, with a reason; a manager decides later."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise MarketplaceError("reason_required", "A return needs a reason.")
    with transaction.atomic():
        outbound = _outbound_locked(outbound_id)
        if outbound.return_status != ReturnStatus.NONE:
            raise MarketplaceError("already_returned", "This outbound lead was already returned.")
        outbound.return_status = ReturnStatus.REQUESTED
        outbound.return_reason = reason[:500]
        outbound.returned_at = now
        outbound.save(update_fields=["return_status", "return_reason", "returned_at"])
        _return_event(outbound, actor, f"return requested: {reason[:200]}")
        return outbound


def outbound_return_approve(
    *, outbound_id: int, actor: Any, note: str = "", now: datetime | None = None
) -> OutboundLead:
    """Approve a requested return: the buyer's cap and budget are credited (the outbound
    lead no longer counts toward them) and turnover reports show it as returned."""
    return _return_decide(
        outbound_id=outbound_id, actor=actor, note=note, now=now, status=ReturnStatus.APPROVED
    )


def outbound_return_deny(
    *, outbound_id: int, actor: Any, note: str = "", now: datetime | None = None
) -> OutboundLead:
    """Deny a requested return: the outbound lead keeps counting as sold."""
    return _return_decide(
        outbound_id=outbound_id, actor=actor, note=note, now=now, status=ReturnStatus.DENIED
    )


def _return_decide(
    *, outbound_id: int, actor: Any, note: str, now: datetime | None, status: str
) -> OutboundLead:
    now = now or timezone.now()
    with transaction.atomic():
        outbound = _outbound_locked(outbound_id)
        if outbound.return_status != ReturnStatus.REQUESTED:
            raise MarketplaceError(
                "no_return_requested", "No return is waiting for a decision on this outbound lead."
            )
        outbound.return_status = status
        outbound.return_decided_at = now
        outbound.return_decided_by = actor if getattr(actor, "pk", None) else None
        outbound.return_note = note[:500]
        fields = ["return_status", "return_decided_at", "return_decided_by", "return_note"]
        if status == ReturnStatus.APPROVED:  # the sale stands no more (§4 statuses)
            outbound.status = DeliveryStatus.RETURNED
            fields.append("status")
        outbound.save(update_fields=fields)
        _return_event(outbound, actor, f"return {status}" + (f": {note[:200]}" if note else ""))
        return outbound


def _return_event(outbound: OutboundLead, actor: Any, text: str) -> None:
    note_event(
        lead_id=outbound.lead_id,
        actor=actor,
        message=f"{outbound.contract}: {text}",
        data={"outbound": outbound.pk, "return": outbound.return_status},
    )
