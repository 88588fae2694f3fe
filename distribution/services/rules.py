"""Enabling and disabling rules, distributing the waiting leads a rule matches, and sending
leads through the rule table again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from celery.result import EagerResult
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from distribution.caches.routing import routing_config
from distribution.engine import routing as engine
from distribution.loaders.routing import LEAD_RELATED, lead_snapshots, locked_leads
from distribution.models import Offer, Rule
from distribution.services.distribute import leads_distribute_batch
from distribution.services.queueing import QUEUE_RETRY
from distribution.services.router import Trigger
from leads.models import DistributionState, Lead, LeadStatus

logger = logging.getLogger(__name__)
WAITING_FOR_A_RULE = (LeadStatus.UNASSIGNED, LeadStatus.EXCEPTION, LeadStatus.PENDING)
BACKLOG_CHUNK = 500  # matching waiting leads per distribution task when a rule is enabled


def rule_distribute_waiting(*, rule_id: int) -> dict[str, int]:
    """Queue the distribution of every waiting lead the enabled rule matches, in chunks
    (seed 002; DESIGN §3 "Enabling": through the same throttled path as new leads).

    1. Waiting = no owner, in the Lead Assignment or Exception queue (or still pending),
       not routed by another rule.
    2. Read them oldest first, BACKLOG_CHUNK at a time (keyset pages: no limit, flat
       memory); keep those the rule matches (engine) and mark them pending.
    3. Queue each chunk of BACKLOG_CHUNK matching leads as one `distribute_leads` task: the
       batch path of new leads, where the rule table decides (priorities still hold) and
       the workers set the pace. A chunk that cannot be queued stays pending: the sweeper
       re-queues its leads.

    Returns the outcomes of the chunks that already ran (eager Celery: tests, the demo
    without a worker); {} when workers have them.
    """
    now = timezone.now()
    rule = routing_config(now).snapshot(rule_id)
    if rule is None or not rule.enabled:
        return {}
    waiting = (
        Lead.objects.filter(
            Q(rule__isnull=True) | Q(rule_id=rule_id),
            owner__isnull=True,
            status__in=WAITING_FOR_A_RULE,
        )
        .select_related(*LEAD_RELATED)
        .order_by("created_at", "id")
    )
    outcomes: Counter[str] = Counter()
    chunk: list[int] = []
    page = list(waiting[:BACKLOG_CHUNK])
    while page:
        # with the owner and action count when the rule's filters name them (1 query each)
        snaps = lead_snapshots(page, rule.filters)
        matched = [lead.pk for lead in page if engine.rule_mismatch(rule, snaps[lead.pk]) is None]
        Lead.objects.filter(
            pk__in=matched, owner__isnull=True, status__in=WAITING_FOR_A_RULE
        ).update(distribution_state=DistributionState.PENDING, updated_at=now)
        chunk += matched
        while len(chunk) >= BACKLOG_CHUNK:
            outcomes.update(_queue_chunk(chunk[:BACKLOG_CHUNK]))
            chunk = chunk[BACKLOG_CHUNK:]
        last = page[-1]
        after = Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, pk__gt=last.pk)
        page = list(waiting.filter(after)[:BACKLOG_CHUNK])
    if chunk:
        outcomes.update(_queue_chunk(chunk))
    return dict(outcomes)


def _queue_chunk(lead_ids: list[int]) -> dict[str, int]:
    """Queue one chunk of pending leads for distribution; its outcomes if it ran at once."""
    from distribution.tasks.routing import distribute_leads

    try:
        result = distribute_leads.apply_async(
            args=[lead_ids],
            kwargs={"trigger": Trigger.ENABLE},
            retry=True,
            retry_policy=QUEUE_RETRY,
        )
    except Exception:  # broker down: the leads stay pending and the sweeper re-queues them
        logger.warning("could not queue %d leads; the sweeper will", len(lead_ids), exc_info=True)
        return {}
    return _outcomes_if_ran(result)


def _queue_backlog(rule_id: int) -> dict[str, int]:
    """Queue the task that queues the rule's matching waiting leads (rule_distribute_waiting);
    the outcomes if it ran at once."""
    from distribution.tasks.routing import distribute_waiting_for_rule

    try:
        result = distribute_waiting_for_rule.apply_async(
            args=[rule_id], retry=True, retry_policy=QUEUE_RETRY
        )
    except Exception:  # broker down: nothing is lost but the backlog waits for a re-enable
        logger.error("could not queue the waiting leads of rule %s", rule_id, exc_info=True)
        return {}
    return _outcomes_if_ran(result)


def _outcomes_if_ran(result: Any) -> dict[str, int]:
    """What a queued task returned when it ran in process (eager Celery), else {}."""
    return dict(result.result) if isinstance(result, EagerResult) and result.successful() else {}


def rule_queue_waiting_leads(*, rule_id: int) -> None:
    """After the current transaction commits, queue the distribution of the leads a
    just-enabled rule matches (apply_config, the admin's rule form)."""
    transaction.on_commit(lambda: _queue_backlog(rule_id))


# what a rule matches: saving a change of these on an enabled rule distributes its backlog
MATCH_FIELDS = frozenset({"filters", "sources", "campaign"})


def rule_saved(*, rule_id: int, was_enabled: bool, changed: Collection[str]) -> bool:
    """After a rule was saved (admin form, apply_config): an enabled rule that was just
    enabled, or whose filters (sources, campaign) changed, distributes the waiting leads it
    now matches once the save commits (seed 002: "Enabled programs will distribute leads
    once filters are saved"). True when that was queued."""
    enabled = Rule.objects.filter(pk=rule_id, enabled=True).exists()
    if not enabled or (was_enabled and not MATCH_FIELDS & set(changed)):
        return False
    rule_queue_waiting_leads(rule_id=rule_id)
    return True


def rules_enable(*, rule_ids: Sequence[int], actor: User | None = None) -> dict[str, int]:
    """Enable rules (committed here); then each queues the distribution of every waiting
    lead it matches. Returns {"enabled": n} plus the outcomes of what already ran (eager
    Celery); with workers the leads are distributed as the workers get to them."""
    with transaction.atomic():
        ids = list(
            Rule.objects.filter(pk__in=list(rule_ids), enabled=False).values_list("pk", flat=True)
        )
        Rule.objects.filter(pk__in=ids).update(enabled=True, updated_at=timezone.now())
    outcomes: Counter[str] = Counter({"enabled": len(ids)})
    for rule_id in ids:
        outcomes.update(_queue_backlog(rule_id))
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
