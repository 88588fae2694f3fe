"""Automations of a lead that changed (`updated`, `status_changed`)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from distribution.engine.filters import match_filters
from distribution.loaders.routing import filters_of, lead_snapshots, locked_leads
from distribution.models import Automation, DistributionAttempt, Offer
from distribution.services.router import Router, Trigger


def lead_run_automations(
    *, lead_id: int, trigger: str, actor: User | None = None
) -> DistributionAttempt | None:
    """Run the first enabled automation of TRIGGER (updated, status_changed) whose filters
    match the lead: to a user (reassigning the owner), the assignment rules, one rule, or
    the hopper (seed 004). None when no automation matches."""
    with transaction.atomic():
        leads = locked_leads([lead_id])
        if not leads:
            return None
        lead = leads[0]
        automations = list(
            Automation.objects.filter(enabled=True, trigger=trigger)
            .select_related("target_user", "target_rule")
            .order_by("priority", "name")
        )
        # with the owner and action count when a filter names them
        snap = lead_snapshots([lead], [f for a in automations for f in filters_of(a.filters)])[
            lead.pk
        ]
        automation = next(
            (a for a in automations if match_filters(filters_of(a.filters), snap)[0]), None
        )
        if automation is None:
            return None
        Offer.objects.filter(lead=lead, status=Offer.Status.OPEN).update(
            status=Offer.Status.WITHDRAWN, closed_at=timezone.now()
        )
        router = Router(trigger=Trigger.AUTOMATION, actor=actor)
        job = router.job(lead)
        if not router.plan_automation(job, automation):
            router.plan_rule_table(job, unmatched="No enabled rule matches this lead.")
        job.note = f"automation {automation.name!r} ({trigger})"
        attempt = router.run([job])[0]
        router.flush()
    return attempt
