"""Agent API (DESIGN §7): offers, claims (button or PIN), pull, hopper; the agent's own
profile and availability (`/me`).

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
from distribution.services import agent_work, claims
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


class MeOut(Schema):
    email: str | None = None
    name: str
    timezone: str = Field(description="Times on the agent pages are shown in this zone")
    available: bool = Field(description="False while away: no lead is offered or assigned")


class AvailabilityIn(Schema):
    available: bool = Field(description="true: available; false: away")


class AvailabilityOut(MeOut):
    offers_handed_back: int = Field(
        0, description="Open offers declined by going away (they went to the next in line)"
    )


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


def _me(user: User, **extra: Any) -> dict[str, Any]:
    profile = user.agent
    return {
        "email": user.email,
        "name": user.name,
        "timezone": profile.timezone,
        "available": profile.available,
        **extra,
    }


@router.get("/me", auth=AGENT_AUTH, response={200: MeOut, **ERRORS}, summary="Me")
def me(request: HttpRequest) -> dict[str, Any]:
    """The signed-in agent: e-mail, name, time zone and whether available or away."""
    return _me(_agent(request))


@router.post(
    "/me/availability",
    auth=AGENT_AUTH,
    response={200: AvailabilityOut, **ERRORS, 422: ErrorOut},
    summary="Set me available or away",
)
def set_availability(request: HttpRequest, payload: AvailabilityIn) -> dict[str, Any]:
    """`{"available": false}`: away — no lead is offered, assigned or pulled to the agent,
    and their open offers go to the next in line; `true`: available again."""
    agent = _agent(request)
    profile, handed_back = agent_work.agent_set_available(agent=agent, available=payload.available)
    agent.agent = profile
    return _me(agent, offers_handed_back=handed_back)


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
def hopper(request: HttpRequest, q: str = "", after: int | None = None) -> list[dict[str, Any]]:
    """Leads waiting in the hoppers the agent belongs to, oldest first, up to 200: `q`
    searches name, e-mail, phone and postcode; `after` (the last id of the previous
    answer) lists the next ones."""
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
        for lead in selectors.hopper_leads_for_agent(agent=_agent(request), q=q, after=after)
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
