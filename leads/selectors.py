"""Reads for leads: the API's lead document and the queries behind the lists."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from leads.models import Lead


def lead_get_for_api(*, lead_id: int) -> Lead | None:
    return Lead.objects.select_related("owner", "source", "campaign").filter(pk=lead_id).first()


def lead_outbound(lead: Lead) -> list[dict[str, Any]]:
    """The lead's outbound (sold) copies: contract, company, method, price."""
    from distribution import selectors

    return selectors.outbound_for_lead(lead)


def lead_rule_name(lead: Lead) -> str | None:
    from distribution import selectors

    return selectors.rule_name_for_lead(lead)


def lead_document(lead: Lead) -> dict[str, Any]:
    """The public shape of a lead (DESIGN §7)."""
    return {
        "id": lead.pk,
        "status": lead.status,
        "owner": lead.owner.email if lead.owner_id and lead.owner else None,
        "rule": lead_rule_name(lead),
        "outbound": lead_outbound(lead),
        "created_at": lead.created_at,
        "external_id": lead.external_id or None,
        "source": lead.source.slug if lead.source_id and lead.source else None,
        "campaign": lead.campaign.slug if lead.campaign_id and lead.campaign else None,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "email": lead.email,
        "phone": lead.phone,
        "duplicate_of": lead.duplicate_of_id,
    }


def leads_waiting_distribution() -> QuerySet[Lead]:
    return Lead.objects.filter(distribution_state="pending").order_by("created_at", "id")


def lead_visible_to(lead: Lead, reader: Any) -> bool:
    """A source reads its own leads; an agent reads leads it owns or is offered."""
    from leads.models import Source

    if isinstance(reader, Source):
        return lead.source_id == reader.pk
    if lead.owner_id == getattr(reader, "pk", None):
        return True
    from distribution import selectors

    return selectors.lead_offered_to(lead, reader)
