"""An agent's own work: moving an owned lead along the pipeline, reading notices, setting
themself available or away."""

from __future__ import annotations

from django.db import transaction

from accounts.models import AgentProfile, User
from distribution.errors import DistributionError, NotAllowed
from distribution.loaders.routing import locked_leads
from distribution.models import Automation, Notice, Offer
from distribution.services.automations import lead_run_automations
from distribution.services.claims import offer_decline
from leads.models import Activity, Lead, LeadStatus

AGENT_SETTABLE_STATUSES = frozenset(
    {
        LeadStatus.WORKING,
        LeadStatus.CONTACTED,
        LeadStatus.QUALIFIED,
        LeadStatus.CONVERTED,
        LeadStatus.LOST,
    }
)


def lead_status_update(*, lead_id: int, agent: User, status: str) -> Lead:
    """The owner moves a lead along the sales pipeline; `status_changed` automations run
    after commit."""
    if status not in AGENT_SETTABLE_STATUSES:
        raise NotAllowed(f"{status!r} is not a status an agent sets.", code="invalid_status")
    with transaction.atomic():
        leads = locked_leads([lead_id], owner=agent)
        if not leads:
            raise NotAllowed("Only the owner changes a lead's status.", code="not_owner")
        lead = leads[0]
        event = lead.transition_to(status, by=agent)
        if event is None:
            return lead
        lead.save(update_fields=["status", "status_changed_at", "updated_at"])
        event.save()
        Activity.objects.create(
            lead=lead, agent=agent, kind=Activity.Kind.STATUS_CHANGE, note=event.message
        )
        transaction.on_commit(
            lambda: lead_run_automations(
                lead_id=lead_id, trigger=Automation.Trigger.STATUS_CHANGED, actor=agent
            )
        )
    return lead


def notices_mark_read(*, agent: User) -> int:
    """Mark the agent's notices read."""
    return Notice.objects.filter(agent=agent, read=False).update(read=True)


def agent_set_available(*, agent: User, available: bool) -> tuple[AgentProfile, int]:
    """The agent sets themself available or away. Routing reads `available` fresh, so an
    away agent gets no new offer, assignment or pull from then on. Going away also hands
    back the agent's open offers at once (each declined: the lead goes to the next in line
    instead of waiting for the claim timer, which an away agent could not beat — claims
    re-check availability). Returns the profile and how many offers were handed back."""
    profile = AgentProfile.objects.filter(user=agent).first()
    if profile is None:
        raise NotAllowed("Only agents set themselves available or away.", code="not_agent")
    if profile.available != available:
        profile.available = available
        profile.save(update_fields=["available"])
    handed_back = 0
    if not available:
        open_offers = Offer.objects.filter(agent=agent, status=Offer.Status.OPEN)
        for offer_id in open_offers.values_list("pk", flat=True):
            try:
                offer_decline(offer_id=offer_id, agent=agent)
            except DistributionError:
                continue  # claimed, expired or withdrawn meanwhile: nothing to hand back
            handed_back += 1
    return profile, handed_back
