"""Writes for leads: ingestion (API, CSV, admin) and activities."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from leads import caches
from leads.models import Activity, Campaign, DistributionState, Lead, LeadEvent, LeadStatus, Source
from leads.signals import lead_awaits_distribution
from leads.validation import LeadInputError, clean_lead_input

CLOSED_STATUSES = (LeadStatus.CONVERTED, LeadStatus.LOST)


def _duplicate_original(lead: Lead) -> Lead | None:
    """The open lead of the same campaign with the same normalised e-mail or phone (asked
    before the insert, so the link is written with it; no query without campaign or
    contact)."""
    match = Q()
    if lead.email_normalized:
        match |= Q(email_normalized=lead.email_normalized)
    if lead.phone_normalized:
        match |= Q(phone_normalized=lead.phone_normalized)
    if not match or lead.campaign_id is None:
        return None
    return (
        Lead.objects.filter(match, campaign_id=lead.campaign_id, duplicate_of__isnull=True)
        .exclude(status__in=CLOSED_STATUSES)
        .order_by("created_at", "id")
        .only("id", "owner_id")
        .first()
    )


def lead_ingest(
    *,
    source: Source | None,
    data: dict[str, Any],
    campaigns: dict[str, Campaign] | None = None,
    queue: bool = True,
    bulk: bool = False,
) -> tuple[Lead, bool]:
    """Save a lead and queue it for distribution; a repeat of (source, external_id) returns
    the stored lead unchanged. Returns (lead, created); raises LeadInputError on bad input.

    1. Validate every field (all errors at once, nothing stored on error); the campaign
       comes from CAMPAIGNS or the per-process cache (leads.caches).
    2. Find the duplicate original (same campaign, same normalised e-mail or phone).
    3. In one transaction: insert the lead with its duplicate link, insert its timeline
       events, announce it (`lead_awaits_distribution`: distribution queues its task after
       commit). The unique constraint on (source, external_id) — not a check-then-insert —
       makes concurrent repeats collapse into one lead: the transaction rolls back and the
       stored lead is returned.

    BULK (a CSV row): the distribution is queued in the bulk lane, behind no live lead.
    A new lead costs 3 queries (1 duplicate check, 2 inserts) inside BEGIN / COMMIT, 2
    without a campaign or contact; a repeat costs 1 more (the stored lead).
    """
    values = clean_lead_input(data, campaigns=campaigns)
    lead = Lead(source=source, **values)
    if not queue:  # not distributed until asked (distribute_pending, a rule's backlog)
        lead.distribution_state = DistributionState.UNQUEUED
    lead.normalise()
    original = _duplicate_original(lead)
    if original is not None:
        lead.duplicate_of = original
    try:
        with transaction.atomic():
            lead.save(force_insert=True)
            events = [
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.CREATED,
                    message=f"from {source.name if source else 'the admin'}",
                )
            ]
            if original is not None:
                events.append(
                    LeadEvent(
                        lead=lead,
                        kind=LeadEvent.Kind.DUPLICATE,
                        message=f"same contact as lead #{original.pk}",
                        data={"original": original.pk},
                    )
                )
            LeadEvent.objects.bulk_create(events)
            if queue:
                lead_awaits_distribution.send(sender=Lead, lead_id=lead.pk, bulk=bulk)
    except IntegrityError:
        lead.pk = None
        existing = (
            Lead.objects.select_related("owner", "source", "campaign")
            .filter(source=source, external_id=lead.external_id)
            .first()
            if source and lead.external_id
            else None
        )
        if existing is None:  # another constraint: e.g. a campaign deleted since cached
            caches.clear_all()
            if (
                lead.campaign_id is not None
                and not Campaign.objects.filter(pk=lead.campaign_id).exists()
            ):
                slug = data.get("campaign")
                raise LeadInputError({"campaign": [f"unknown campaign {slug!r}."]}) from None
            raise
        return existing, False
    return lead, True


def activity_log(*, lead: Lead, agent: Any, kind: str, note: str = "") -> Activity:
    """Record work on a lead (a call attempt, a contact, an e-mail, an outcome)."""
    return Activity.objects.create(lead=lead, agent=agent, kind=kind, note=note)
