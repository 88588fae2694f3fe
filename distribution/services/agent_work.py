"""An agent's own work: moving an owned lead along the pipeline, reading notices."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from distribution.errors import NotAllowed
from distribution.loaders.routing import locked_leads
from distribution.models import Automation, Notice
from distribution.services.automations import lead_run_automations
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
