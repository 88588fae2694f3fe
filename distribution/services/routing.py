"""Agent routing: decide who gets a lead, persist it, and record why."""

from __future__ import annotations

import time

from django.db import transaction

from distribution.models import DistributionAttempt
from leads.models import DistributionState, Lead, LeadEvent, LeadStatus


def lead_distribute(*, lead_id: int, trigger: str = "arrival") -> DistributionAttempt | None:
    """Distribute one pending lead; a lead already distributed is left alone (idempotent).

    Until routing rules exist, no rule matches: the lead goes to the Lead Assignment queue.
    """
    started = time.perf_counter()
    with transaction.atomic():
        lead = (Lead.objects.select_for_update()
                .filter(pk=lead_id, distribution_state=DistributionState.PENDING).first())
        if lead is None:
            return None
        event = lead.transition_to(LeadStatus.UNASSIGNED, note="no rule matched")
        lead.distribution_state = DistributionState.DONE
        lead.save(update_fields=["status", "status_changed_at", "distribution_state",
                                 "updated_at"])
        if event:
            event.save()
        LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.ROUTED,
                                 message="No rule matched: to the Lead Assignment queue")
        return DistributionAttempt.objects.create(
            lead=lead, trigger=trigger, outcome="no_rule_matched",
            reason="No enabled rule matches this lead; it waits in the Lead Assignment queue.",
            duration_ms=(time.perf_counter() - started) * 1000,
        )
