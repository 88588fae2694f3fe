"""Enabling and disabling rules, distributing the waiting leads a rule matches, and sending
leads through the rule table again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from distribution.caches.routing import rulebook_load
from distribution.engine import routing as engine
from distribution.loaders.routing import LEAD_RELATED, lead_snapshot, locked_leads
from distribution.models import (
    Offer,
    Rule,
)
from distribution.services.distribute import leads_distribute_batch
from distribution.services.router import Trigger
from leads.models import DistributionState, Lead, LeadStatus

WAITING_FOR_A_RULE = (LeadStatus.UNASSIGNED, LeadStatus.EXCEPTION, LeadStatus.PENDING)


def rule_distribute_waiting(
    *, rule_id: int, actor: User | None = None, limit: int = 5000
) -> dict[str, int]:
    """Distribute, now, every waiting lead the rule matches (seed 002: enabling a rule).

    1. Waiting = no owner, in the Lead Assignment or Exception queue (or still pending),
       not routed by another rule.
    2. Keep those the rule matches (engine), mark them pending, then run them through the
       same batch path as new leads — the rule table decides, so priorities still hold.
    """
    now = timezone.now()
    book = rulebook_load(now, automations=True)
    rule = book.snapshot(rule_id)
    if rule is None or not rule.enabled:
        return {}
    candidates = Lead.objects.filter(
        Q(rule__isnull=True) | Q(rule_id=rule_id), owner__isnull=True, status__in=WAITING_FOR_A_RULE
    )
    matched = [
        lead.pk
        for lead in candidates.select_related(*LEAD_RELATED).order_by("created_at", "id")[:limit]
        if engine.rule_mismatch(rule, lead_snapshot(lead)) is None
    ]
    if not matched:
        return {}
    Lead.objects.filter(pk__in=matched, owner__isnull=True, status__in=WAITING_FOR_A_RULE).update(
        distribution_state=DistributionState.PENDING, updated_at=now
    )
    outcomes: Counter[str] = Counter()
    for start in range(0, len(matched), 500):
        attempts = leads_distribute_batch(
            trigger=Trigger.ENABLE,
            lead_ids=matched[start : start + 500],
            skip_locked=True,
            book=book,
        )
        outcomes.update(a.outcome for a in attempts)
    return dict(outcomes)


def rule_queue_waiting_leads(*, rule_id: int) -> None:
    """After the current transaction commits, distribute the leads a just-enabled rule
    matches (apply_config, the admin)."""
    transaction.on_commit(lambda: rule_distribute_waiting(rule_id=rule_id))


def rules_enable(*, rule_ids: Sequence[int], actor: User | None = None) -> dict[str, int]:
    """Enable rules; each then distributes at once every waiting lead it matches."""
    with transaction.atomic():
        ids = list(
            Rule.objects.filter(pk__in=list(rule_ids), enabled=False).values_list("pk", flat=True)
        )
        Rule.objects.filter(pk__in=ids).update(enabled=True, updated_at=timezone.now())
    outcomes: Counter[str] = Counter({"enabled": len(ids)})
    for rule_id in ids:
        outcomes.update(rule_distribute_waiting(rule_id=rule_id, actor=actor))
    return dict(outcomes)


def rules_disable(*, rule_ids: Sequence[int]) -> int:
    """Disable rules: new leads stop matching them (waiting leads stay where they are)."""
    return Rule.objects.filter(pk__in=list(rule_ids), enabled=True).update(
        enabled=False, updated_at=timezone.now()
    )


def leads_redistribute(*, lead_ids: Sequence[int], actor: User | None = None) -> dict[str, int]:
    """Send leads (from a queue) through the rule table again, e.g. after a rule changed."""
    with transaction.atomic():
        leads = locked_leads(list(lead_ids))
        for lead in leads:
            Offer.objects.filter(lead=lead, status=Offer.Status.OPEN).update(
                status=Offer.Status.WITHDRAWN, closed_at=timezone.now()
            )
        ids = [lead.pk for lead in leads]
        Lead.objects.filter(pk__in=ids).update(
            distribution_state=DistributionState.PENDING, owner=None, updated_at=timezone.now()
        )
        attempts = leads_distribute_batch(
            trigger=Trigger.MANUAL, lead_ids=ids, skip_locked=False, limit=len(ids) or 1
        )
    return dict(Counter(a.outcome for a in attempts))
