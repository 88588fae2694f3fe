"""Buyer API (DESIGN §7): the company's bought leads, oldest first, and returns.

Auth: a buyer bearer token or a signed-in buyer's session. A buyer sees only their
company's outbound leads (another company's answers 404)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from accounts.auth import BuyerSessionAuth, BuyerTokenAuth
from accounts.models import User
from distribution.errors import NotAllowed
from distribution.selectors import buyer as selectors
from distribution.services.marketplace.buyer import buyer_return_request

from .routing import ErrorOut

router = Router(tags=["buyers"])
BUYER_AUTH = [BuyerTokenAuth(), BuyerSessionAuth()]


class BuyerLeadFields(Schema):
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    postcode: str
    city: str
    country: str
    company_name: str
    attributes: dict[str, Any]


class BuyerLeadOut(Schema):
    id: int = Field(description="The outbound lead's id (pass it as `after` to page on)")
    lead: BuyerLeadFields
    contract: str
    price: Decimal
    status: str = Field(description="delivered or returned")
    created_at: datetime


class ReturnIn(Schema):
    reason: str = Field(description="Why the lead is returned (a manager reads it)")


class ReturnOut(Schema):
    status: str = Field(description="return_requested")


def _buyer(request: HttpRequest) -> User:
    user = request.auth  # type: ignore[attr-defined]
    if not isinstance(user, User) or not hasattr(user, "buyer"):
        raise NotAllowed("Only buyers may use this endpoint.", code="not_buyer")
    if request.method == "POST" and "HTTP_AUTHORIZATION" not in request.META:
        # a session (cookie) caller: a cross-site form must not return leads for them
        reason = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(
            request, lambda r: HttpResponse(), (), {}
        )
        if reason is not None:
            raise NotAllowed("CSRF verification failed.", code="csrf_failed")
    return user


@router.get(
    "/buyer/leads",
    auth=BUYER_AUTH,
    response={200: list[BuyerLeadOut], 401: ErrorOut, 403: ErrorOut},
    summary="My company's leads",
)
def buyer_leads(request: HttpRequest, after: int | None = None) -> list[dict[str, Any]]:
    """The company's outbound leads that are delivered or returned, oldest first, up to 500;
    `after` (the last id of the previous answer) lists only newer ones, so a system can
    pull each lead once."""
    company_id = _buyer(request).buyer.company_id
    return [
        selectors.buyer_lead_row(o)
        for o in selectors.buyer_outbound_list(company_id=company_id, after=after)
    ]


@router.post(
    "/buyer/leads/{outbound_id}/return",
    auth=BUYER_AUTH,
    response={
        202: ReturnOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        400: ErrorOut,
        422: ErrorOut,
    },
    summary="Return a lead",
)
def buyer_return(
    request: HttpRequest, outbound_id: int, payload: ReturnIn
) -> Status[dict[str, str]]:
    """Return one of the company's leads with a reason, within the contract's
    `return_window`: 202 `return_requested` (a manager approves or denies); 409
    `return_window_closed` after it; another company's lead answers 404."""
    buyer_return_request(user=_buyer(request), outbound_id=outbound_id, reason=payload.reason)
    return Status(202, {"status": "return_requested"})
