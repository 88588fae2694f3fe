"""The contact SLA: take back leads with no contact attempt in time and route them again."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from distribution.loaders.routing import locked_leads, offered_members
from distribution.models import Assignment, Notice
from distribution.services.notify import Email
from distribution.services.router import Router, Trigger
from leads.models import Activity, Lead, LeadEvent, LeadStatus


def leads_reassign_missed_sla(*, now: datetime | None = None, limit: int = 200) -> int:
    """Take back assigned leads whose contact SLA passed with no contact attempt logged, and
    re-distribute them without the agent who missed it (the miss is recorded)."""
    now = now or timezone.now()
    with transaction.atomic():
        leads = locked_leads(
            skip_locked=True, limit=limit, sla_due_at__lte=now, owner__isnull=False
        )
        if not leads:
            return 0
        attempted = set(
            Activity.objects.filter(
                lead_id__in=[lead.pk for lead in leads], kind__in=Activity.CONTACT_ATTEMPT_KINDS
            ).values_list("lead_id", "agent_id")
        )
        missed = [lead for lead in leads if (lead.pk, lead.owner_id) not in attempted]
        kept = [lead.pk for lead in leads if (lead.pk, lead.owner_id) in attempted]
        if kept:
            Lead.objects.filter(pk__in=kept).update(sla_due_at=None)
        if not missed:
            return 0
        router = Router(now=now, trigger=Trigger.SLA)
        latest = dict(
            Assignment.objects.filter(lead_id__in=[lead.pk for lead in missed])
            .values("lead_id")
            .annotate(last=Max("id"))
            .values_list("lead_id", "last")
        )
        Assignment.objects.filter(pk__in=latest.values()).update(sla_missed=True)
        history = offered_members([lead.pk for lead in missed])
        jobs = []
        for lead in missed:
            loser = int(lead.owner_id or 0)  # the query asked for owned leads only
            rule = router.book.snapshot(lead.rule_id)
            router.writes.notices.append(
                Notice(
                    agent_id=loser,
                    lead=lead,
                    created_at=now,
                    message=f"Lead #{lead.pk} was taken back: no contact attempt in time.",
                )
            )
            router.writes.emails.append(
                Email(
                    "lead_taken_back",
                    loser,
                    lead.pk,
                    {
                        "reason": "no contact attempt was logged in time",
                        "taken_at": now.isoformat(),
                    },
                )
            )
            router.writes.events.append(
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.NOTE,
                    created_at=now,
                    message="contact SLA missed: taken back for re-distribution",
                    data={"agent_id": loser},
                )
            )
            lead.owner_id = None
            event = lead.transition_to(LeadStatus.PENDING, note="contact SLA missed")
            if event is not None:
                router.writes.events.append(event)
            if rule is None or not rule.enabled:
                jobs.append(router.plan_new(lead))
                continue
            offered, _ = history.get(lead.pk, (frozenset(), 1))
            # the member who missed is not offered the lead again
            router.load_pools([rule])
            state = router.pool(rule)
            member = state.member_of(loser) if state is not None and loser else None
            if member is not None:
                offered = offered | {member.id}
            jobs.append(router.job(lead, rule=rule, offered=offered))
        router.run(jobs)
        router.flush()
    return len(missed)
