"""What a buyer does themselves (DESIGN §4 "The buyer's side"): return one of their
company's outbound leads within the contract's return window, pause or resume one of their
company's contracts. Each checks the company, then calls the existing service."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from accounts.models import User
from crm.models import Contract
from distribution.errors import NotAllowed, NotFound, ReturnWindowClosed
from distribution.models import DeliveryStatus, OutboundLead
from distribution.selectors.buyer import buyer_outbound_get, return_closes_at

from .contracts import contract_pause, contract_resume
from .returns import outbound_return_request


def _company_id(user: User) -> int:
    profile = getattr(user, "buyer", None)
    if profile is None:
        raise NotAllowed("Only buyers may do this.", code="not_buyer")
    return int(profile.company_id)


def buyer_return_request(
    *, user: User, outbound_id: int, reason: str, now: datetime | None = None
) -> OutboundLead:
    """A buyer returns one of their company's outbound leads with a reason; a manager
    approves or denies it later. Another company's lead is not found (404); after the
    contract's `return_window` the answer is `return_window_closed` (409)."""
    now = now or timezone.now()
    outbound = buyer_outbound_get(company_id=_company_id(user), outbound_id=outbound_id)
    if outbound is None:
        raise NotFound("No such lead among your company's leads.")
    if now >= return_closes_at(outbound):
        closed = timezone.localtime(return_closes_at(outbound))
        raise ReturnWindowClosed(
            f"The return window of this lead closed at {closed:%Y-%m-%d %H:%M}."
        )
    if outbound.status != DeliveryStatus.DELIVERED:
        raise ReturnWindowClosed("This lead was already returned.", code="already_returned")
    return outbound_return_request(outbound_id=outbound.pk, reason=reason, actor=user, now=now)


def buyer_contract_set_paused(*, user: User, contract_id: int, paused: bool) -> Contract:
    """Pause or resume one of the buyer's company's contracts (another company's: 404)."""
    if not Contract.objects.filter(pk=contract_id, company_id=_company_id(user)).exists():
        raise NotFound("No such contract of your company.")
    service = contract_pause if paused else contract_resume
    return service(contract_id=contract_id, actor=user)
