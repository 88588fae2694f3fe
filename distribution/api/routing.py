"""Agent API (DESIGN §7): offers, claims (button or PIN), pull, hopper.

Auth: an agent bearer token or a signed-in agent's session. A lost race or an expired offer
answers 409 (`already_claimed` / `offer_expired`), a lead the agent may not take 403,
nothing to pull 204.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja import Router, Schema
from pydantic import Field

from accounts.auth import AgentSessionAuth, AgentTokenAuth
from accounts.models import User
from distribution.errors import NotAllowed
from distribution.selectors import routing as selectors
from distribution.services import claims
from leads.selectors import lead_document

router = Router(tags=["agents"])
AGENT_AUTH = [AgentTokenAuth(), AgentSessionAuth()]


class OfferOut(Schema):
    id: int
    lead: int = Field(description="The lead's id")
    expires_at: datetime | None = Field(None, description="Claimable until (null: no timer)")
    pin: str = Field(description="The lead's PIN: the first offered agent to call in with it wins")


class PinIn(Schema):
    pin: str


class HopperLeadOut(Schema):
    id: int
    status: str
    created_at: datetime
    first_name: str = ""
    last_name: str = ""
    city: str = ""
    postcode: str = ""
    company_name: str = ""
    campaign: str | None = None
    rule: str | None = None


class ClaimedOut(Schema):
    id: int
    status: str
    owner: str | None = None
    rule: str | None = None
    created_at: datetime
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""


class ErrorOut(Schema):
    detail: str
    code: str
    errors: dict[str, list[str]]


ERRORS: dict[int, Any] = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


def _agent(request: HttpRequest) -> User:
    user = request.auth  # type: ignore[attr-defined]
    if not isinstance(user, User) or not hasattr(user, "agent"):
        raise NotAllowed("Only agents may use this endpoint.", code="not_agent")
    if request.method == "POST" and "HTTP_AUTHORIZATION" not in request.META:
        # a session (cookie) caller: a cross-site form must not claim leads for them
        reason = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(
            request, lambda r: HttpResponse(), (), {}
        )
        if reason is not None:
            raise NotAllowed("CSRF verification failed.", code="csrf_failed")
    return user


@router.get(
    "/offers",
    auth=AGENT_AUTH,
    response={200: list[OfferOut], 401: ErrorOut},
    summary="My open offers",
)
def list_offers(request: HttpRequest) -> list[dict[str, Any]]:
    """The agent's open offers, each with the lead's PIN."""
    return [
        {"id": o.pk, "lead": o.lead_id, "expires_at": o.expires_at, "pin": o.lead.pin}
        for o in selectors.offers_open_for_agent(agent=_agent(request))
    ]


@router.post(
    "/offers/{offer_id}/claim",
    auth=AGENT_AUTH,
    response={200: ClaimedOut, **ERRORS},
    summary="Claim an offer",
)
def claim_offer(request: HttpRequest, offer_id: int) -> dict[str, Any]:
    """The first valid claim wins; later ones answer 409 already_claimed."""
    lead = claims.offer_claim(offer_id=offer_id, agent=_agent(request))
    return lead_document(lead)


@router.post(
    "/offers/{offer_id}/decline",
    auth=AGENT_AUTH,
    response={200: ClaimedOut, **ERRORS},
    summary="Decline an offer",
)
def decline_offer(request: HttpRequest, offer_id: int) -> dict[str, Any]:
    """The lead goes to the next in line; it is not offered to this agent again."""
    lead = claims.offer_decline(offer_id=offer_id, agent=_agent(request))
    return lead_document(lead)


@router.post(
    "/claims",
    auth=AGENT_AUTH,
    response={200: ClaimedOut, **ERRORS, 422: ErrorOut},
    summary="Claim by PIN",
)
def claim_by_pin(request: HttpRequest, payload: PinIn) -> dict[str, Any]:
    """Claim the lead offered to the agent whose PIN is given (the phone claim)."""
    lead = claims.offer_claim_by_pin(agent=_agent(request), pin=payload.pin)
    return lead_document(lead)


@router.post(
    "/pull", auth=AGENT_AUTH, response={200: ClaimedOut, 204: None, **ERRORS}, summary="Get lead"
)
def pull(request: HttpRequest) -> Any:
    """The next lead of the agent's pull rules; 204 when there is nothing to pull."""
    lead = claims.lead_pull(agent=_agent(request))
    if lead is None:
        return HttpResponse(status=204)
    return lead_document(lead)


@router.get(
    "/hopper",
    auth=AGENT_AUTH,
    response={200: list[HopperLeadOut], 401: ErrorOut},
    summary="Leads in my hoppers",
)
def hopper(request: HttpRequest) -> list[dict[str, Any]]:
    """Leads waiting in the hoppers the agent belongs to, oldest first."""
    return [
        {
            "id": lead.pk,
            "status": lead.status,
            "created_at": lead.created_at,
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "city": lead.city,
            "postcode": lead.postcode,
            "company_name": lead.company_name,
            "campaign": lead.campaign.slug if lead.campaign else None,
            "rule": lead.rule.name if lead.rule else None,
        }
        for lead in selectors.hopper_leads_for_agent(agent=_agent(request))
    ]


@router.post(
    "/hopper/{lead_id}/claim",
    auth=AGENT_AUTH,
    response={200: ClaimedOut, **ERRORS},
    summary="Pick a lead from the hopper",
)
def claim_from_hopper(request: HttpRequest, lead_id: int) -> dict[str, Any]:
    """Atomic: the first pick wins; later ones answer 409 already_claimed."""
    lead = claims.hopper_claim(agent=_agent(request), lead_id=lead_id)
    return lead_document(lead)
