"""Writes for leads: ingestion (API, CSV, admin) and activities."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import DomainError, NotFoundError
from leads import caches
from leads.models import (
    MERGEABLE_STATUSES,
    Activity,
    Campaign,
    DistributionState,
    Lead,
    LeadEvent,
    LeadStatus,
    Source,
)
from leads.signals import lead_awaits_distribution
from leads.validation import LeadInputError, clean_lead_input

CLOSED_STATUSES = (LeadStatus.CONVERTED, LeadStatus.LOST, LeadStatus.MERGED)
# contact fields a merge copies from the duplicate where the original has none
MERGE_FILLS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "postcode",
    "city",
    "country",
    "latitude",
    "longitude",
    "company_name",
    "company_size",
)


class DuplicateError(DomainError):
    """A merge or unlink that the duplicate's state does not allow."""

    code = "duplicate_refused"
    status = 409


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


def _lock_duplicate_pair(lead_id: int) -> tuple[Lead, Lead]:
    """The duplicate LEAD_ID and its original, both rows locked (id order, so a merge and an
    unlink of the same pair never deadlock); refuses a lead that is no linked duplicate."""
    head = Lead.objects.filter(pk=lead_id).values_list("duplicate_of_id", flat=True).first()
    if head is None and not Lead.objects.filter(pk=lead_id).exists():
        raise NotFoundError(f"No lead #{lead_id}.")
    ids = sorted({lead_id, head}) if head is not None else [lead_id]
    locked = {lead.pk: lead for lead in Lead.objects.select_for_update().filter(pk__in=ids)}
    lead = locked[lead_id]
    if lead.duplicate_of_id is None or lead.duplicate_of_id not in locked:
        raise DuplicateError(f"Lead #{lead_id} is not linked to an original.", code="not_duplicate")
    return lead, locked[lead.duplicate_of_id]


def _who(actor: Any) -> str:
    return getattr(actor, "email", "") or "a manager"


def lead_merge_duplicate(*, lead_id: int, actor: Any) -> Lead:
    """Merge the duplicate LEAD_ID into its original, which is kept: the duplicate's
    activities and timeline move to the original, the original's blank contact fields take
    the duplicate's, and the duplicate is closed with status `merged` (still linked, so the
    original lists it); both timelines say who did it and when. Returns the original.

    Refused for a duplicate that is offered (agents hold open offers of it), sold, or merged
    already, and for an original that is itself merged.
    """
    with transaction.atomic():
        dup, original = _lock_duplicate_pair(lead_id)
        if dup.status not in MERGEABLE_STATUSES:
            raise DuplicateError(
                f"Lead #{dup.pk} is {dup.get_status_display().lower()}; it cannot be merged now.",
                code="not_mergeable",
            )
        if original.status == LeadStatus.MERGED:
            raise DuplicateError(
                f"Its original, lead #{original.pk}, was itself merged.", code="not_mergeable"
            )
        now = timezone.now()
        who = _who(actor)
        filled = [
            name
            for name in MERGE_FILLS
            if getattr(original, name) in ("", None) and getattr(dup, name) not in ("", None)
        ]
        for name in filled:
            setattr(original, name, getattr(dup, name))
        if filled:
            original.normalise()
            original.save(
                update_fields=[*filled, "email_normalized", "phone_normalized", "updated_at"]
            )
        activities = Activity.objects.filter(lead=dup).update(lead=original)
        events = LeadEvent.objects.filter(lead=dup).update(lead=original)
        closed = dup.transition_to(
            LeadStatus.MERGED, by=actor, note=f"merged into lead #{original.pk} by {who}"
        )
        dup.distribution_state = DistributionState.DONE
        dup.held_until = None
        dup.sla_due_at = None
        dup.exception_reason = ""
        dup.save(
            update_fields=[
                "status",
                "status_changed_at",
                "distribution_state",
                "held_until",
                "sla_due_at",
                "exception_reason",
                "updated_at",
            ]
        )
        data = {
            "duplicate": dup.pk,
            "original": original.pk,
            "activities": activities,
            "events": events,
            "filled": filled,
        }
        rows = [
            LeadEvent(
                lead=original,
                kind=LeadEvent.Kind.MERGED,
                actor=actor if getattr(actor, "pk", None) else None,
                created_at=now,
                data=data,
                message=f"duplicate #{dup.pk} merged into this lead by {who}: {activities} "
                f"activit{'y' if activities == 1 else 'ies'} and {events} event(s) moved"
                + (f"; filled {', '.join(filled)}" if filled else ""),
            )
        ]
        if closed is not None:
            closed.created_at = now
            closed.kind = LeadEvent.Kind.MERGED
            closed.data = {**closed.data, **data}
            rows.append(closed)
        LeadEvent.objects.bulk_create(rows)
    return original


def lead_unlink_duplicate(*, lead_id: int, actor: Any) -> Lead:
    """Unlink the duplicate LEAD_ID from its original: it becomes an independent lead (its
    status and owner unchanged); both timelines say who did it. Returns the unlinked lead.
    A merged duplicate stays with its original."""
    with transaction.atomic():
        lead, original = _lock_duplicate_pair(lead_id)
        if lead.status == LeadStatus.MERGED:
            raise DuplicateError(
                f"Lead #{lead.pk} was merged into lead #{original.pk}; it stays linked.",
                code="merged",
            )
        lead.duplicate_of = None
        lead.save(update_fields=["duplicate_of", "updated_at"])
        who = _who(actor)
        by = actor if getattr(actor, "pk", None) else None
        data = {"duplicate": lead.pk, "original": original.pk}
        LeadEvent.objects.bulk_create(
            [
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.UNLINKED,
                    actor=by,
                    data=data,
                    message=f"unlinked from lead #{original.pk} by {who}: an independent lead",
                ),
                LeadEvent(
                    lead=original,
                    kind=LeadEvent.Kind.UNLINKED,
                    actor=by,
                    data=data,
                    message=f"lead #{lead.pk} unlinked by {who}: no longer a duplicate of this",
                ),
            ]
        )
    return lead
