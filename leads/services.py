"""Writes for leads: ingestion (API, CSV, admin) and activities."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from leads.models import Activity, Campaign, DistributionState, Lead, LeadEvent, LeadStatus, Source
from leads.signals import lead_awaits_distribution
from leads.validation import clean_lead_input

CLOSED_STATUSES = (LeadStatus.CONVERTED, LeadStatus.LOST)


def _link_duplicate(lead: Lead) -> Lead | None:
    """The open lead of the same campaign with the same normalised e-mail or phone."""
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
        .exclude(pk=lead.pk)
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
) -> tuple[Lead, bool]:
    """Save a lead and queue it for distribution; a repeat of (source, external_id) returns
    the stored lead unchanged. Returns (lead, created); raises LeadInputError on bad input.

    1. Validate every field (all errors at once, nothing stored on error).
    2. Insert inside a savepoint; the unique constraint on (source, external_id) — not a
       check-then-insert — makes concurrent repeats collapse into one lead.
    3. Link a duplicate (same campaign, same normalised e-mail or phone) and write the
       timeline.
    4. Announce the lead (`lead_awaits_distribution`): distribution queues its task after
       commit.
    """
    values = clean_lead_input(data, campaigns=campaigns)
    lead = Lead(source=source, **values)
    if not queue:  # not distributed until asked (distribute_pending, a rule's backlog)
        lead.distribution_state = DistributionState.UNQUEUED
    lead.normalise()
    with transaction.atomic():
        try:
            with transaction.atomic():
                lead.save()
        except IntegrityError:
            if not (source and lead.external_id):
                raise
            existing = Lead.objects.filter(source=source, external_id=lead.external_id).first()
            if existing is None:  # the constraint that failed was another one
                raise
            return existing, False
        events = [
            LeadEvent(
                lead=lead,
                kind=LeadEvent.Kind.CREATED,
                message=f"from {source.name if source else 'the admin'}",
            )
        ]
        original = _link_duplicate(lead)
        if original is not None:
            lead.duplicate_of = original
            lead.save(update_fields=["duplicate_of"])
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
            lead_awaits_distribution.send(sender=Lead, lead_id=lead.pk)
    return lead, True


def activity_log(*, lead: Lead, agent: Any, kind: str, note: str = "") -> Activity:
    """Record work on a lead (a call attempt, a contact, an e-mail, an outcome)."""
    return Activity.objects.create(lead=lead, agent=agent, kind=kind, note=note)
