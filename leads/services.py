"""Writes for leads: ingestion (API, CSV, admin) and activities."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError

from leads import caches, db
from leads.models import Activity, Campaign, DistributionState, Lane, Lead, Source
from leads.signals import lead_awaits_distribution
from leads.validation import LeadInputError, clean_lead_input


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
    2. Insert the lead with its duplicate link (the open lead of the same campaign with the
       same normalised e-mail or phone) and its timeline events (`db.lead_insert`: one
       statement on PostgreSQL). The unique constraint on (source, external_id) — not a
       check-then-insert — makes concurrent repeats collapse into one lead: the stored
       lead is returned.
    3. Announce it (`lead_awaits_distribution`): distribution queues its task after commit
       — at once in a web request, which runs outside a transaction.

    BULK (a CSV row): the distribution is queued in the bulk lane, behind no live lead.
    A new lead costs 1 query on PostgreSQL (no BEGIN / COMMIT outside a transaction); a
    repeat costs 1 more (the stored lead).
    """
    values = clean_lead_input(data, campaigns=campaigns)
    lead = Lead(source=source, **values)
    if not queue:  # not distributed until asked (distribute_pending, a rule's backlog)
        lead.distribution_state = DistributionState.UNQUEUED
    if bulk:  # its batch and any re-queue stay in the bulk lane
        lead.lane = Lane.BULK
    lead.normalise()
    violation: IntegrityError | None = None
    try:
        created = db.lead_insert(
            lead, created_message=f"from {source.name if source else 'the admin'}"
        )
    except IntegrityError as error:  # a repeat (elsewhere than PostgreSQL) or another one
        created, violation = False, error
    if not created:  # a repeat of (source, external_id): the stored lead, unchanged
        existing = (
            Lead.objects.select_related("owner", "source", "campaign")
            .filter(source=source, external_id=lead.external_id)
            .first()
            if source and lead.external_id
            else None
        )
        if existing is not None:
            return existing, False
        caches.clear_all()  # e.g. a campaign deleted since cached
        if (
            lead.campaign_id is not None
            and not Campaign.objects.filter(pk=lead.campaign_id).exists()
        ):
            slug = data.get("campaign")
            raise LeadInputError({"campaign": [f"unknown campaign {slug!r}."]})
        raise violation or IntegrityError("the lead was neither stored nor found")
    if queue:  # distribution queues its task after commit (at once outside a transaction)
        lead_awaits_distribution.send(
            sender=Lead, lead_id=lead.pk, bulk=bulk, campaign_id=lead.campaign_id
        )
    return lead, True


def activity_log(*, lead: Lead, agent: Any, kind: str, note: str = "") -> Activity:
    """Record work on a lead (a call attempt, a contact, an e-mail, an outcome)."""
    return Activity.objects.create(lead=lead, agent=agent, kind=kind, note=note)
