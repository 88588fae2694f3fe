"""Ingestion API: `POST /api/v1/leads`, `GET /api/v1/leads/{id}`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import BaseModel, ConfigDict, Field

from accounts.auth import LeadReaderAuth, SourceTokenAuth
from config.errors import NotFoundError
from leads import selectors, services
from leads.models import Source

router = Router(tags=["leads"])


class LeadIn(BaseModel):
    """A lead as a web form or vendor posts it. Unknown keys are kept in `attributes`."""

    # a plain pydantic model, not a ninja Schema: Schema validates through a DjangoGetter,
    # which hides the unknown keys from pydantic (model_extra stayed empty)
    model_config = ConfigDict(extra="allow")

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    campaign: str | None = Field(None, description="Campaign slug")
    external_id: str | None = Field(
        None, description="The sender's id; repeats of (source, external_id) are idempotent"
    )
    postcode: str | None = None
    city: str | None = None
    country: str | None = Field(None, description="ISO 3166 alpha-2")
    latitude: float | None = None
    longitude: float | None = None
    company_name: str | None = None
    company_size: int | None = None
    assign_to_email: str | None = None
    assign_to_user_id: str | int | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class OutboundOut(Schema):
    contract: str
    company: str
    method: Literal["auto", "manual", "cherry_pick"]
    price: Decimal
    status: Literal["pending", "delivered", "rejected", "failed", "returned"] = Field(
        "delivered", description="Delivery to the buyer (DESIGN §4)"
    )
    reason: str | None = Field(None, description="Why a rejected or failed one did not go through")


class LeadOut(Schema):
    id: int
    status: str
    owner: str | None = Field(None, description="The owning agent's e-mail")
    rule: str | None = Field(None, description="The rule that routed the lead")
    outbound: list[OutboundOut]
    held_until: datetime | None = Field(
        None, description="A held lead: when it is distributed (the rule's next opening)"
    )
    held_reason: str | None = Field(None, description="A held lead: why it waits")
    created_at: datetime
    external_id: str | None = None
    source: str | None = None
    campaign: str | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    duplicate_of: int | None = None


class ErrorOut(Schema):
    detail: str
    code: str
    errors: dict[str, list[str]]


@router.post(
    "/leads",
    auth=SourceTokenAuth(),
    response={200: LeadOut, 201: LeadOut, 401: ErrorOut, 422: ErrorOut},
    summary="Post a lead",
)
def post_lead(request: HttpRequest, payload: LeadIn) -> Status[dict[str, Any]]:
    """Save a lead and queue it for distribution; a repeat of (source, external_id) answers
    200 with the stored lead and changes nothing."""
    source = request.auth  # type: ignore[attr-defined]  # set by ninja's auth
    data = payload.model_dump()
    extra = payload.model_extra or {}
    if extra:
        data["attributes"] = {**extra, **(data.get("attributes") or {})}
    lead, created = services.lead_ingest(source=source, data=data)
    # a new lead's rule, outbound and owner are known (none): its 201 costs no query
    return Status(201 if created else 200, selectors.lead_document(lead, new=created))


@router.get(
    "/leads/{lead_id}",
    auth=LeadReaderAuth(),
    response={200: LeadOut, 401: ErrorOut, 404: ErrorOut},
    summary="Read a lead",
)
def get_lead(request: HttpRequest, lead_id: int) -> dict[str, Any]:
    """A source sees only its own leads; an agent sees leads it owns or is offered."""
    lead = selectors.lead_get_for_api(lead_id=lead_id)
    reader = request.auth  # type: ignore[attr-defined]  # set by ninja's auth
    if lead is None or not selectors.lead_visible_to(lead, reader):
        raise NotFoundError("No such lead.")
    return selectors.lead_document(lead)


__all__ = ["Source", "router"]
