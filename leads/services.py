"""Writes for leads: ingestion (API, CSV, admin) and activities."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import DomainError, NotFoundError
from leads import caches, db
from leads.models import (
    MERGEABLE_STATUSES,
    Activity,
    Campaign,
    DistributionState,
    Lane,
    Lead,
    LeadEvent,
    LeadStatus,
    Source,
)
from leads.signals import lead_awaits_distribution
from leads.validation import LeadInputError, clean_lead_input

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
