"""Distributing pending leads through the Router: one lead, a batch, every pending lead, the
next offer round, held leads whose schedule opened.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from distribution.caches.routing import RuleBook
from distribution.db.pending import pending_leads_lock
from distribution.loaders.routing import locked_leads, offered_members
from distribution.models import DistributionAttempt
from distribution.services.router import Router, Trigger
from leads.models import DistributionState, Lead, LeadStatus

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (reference counting frees as usual).

    A batch keeps every row it writes until its flush: some hundred thousand objects that
    made the collector run its full, whole-heap pass several times per 10,000 leads — about
    a seventh of the batch's time — to find nothing (the rows hold no cycles). Nested and
    concurrent users (threads) share one pause: the last to leave restores the collector.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def lead_distribute(*, lead_id: int, trigger: str = Trigger.ARRIVAL) -> DistributionAttempt | None:
    """Distribute one pending lead; a lead already distributed is left alone (idempotent)."""
    attempts = leads_distribute_batch(lead_ids=[lead_id], trigger=trigger, skip_locked=False)
    return attempts[0] if attempts else None


# pending leads an arrival task routes together with its own (oldest first)
ARRIVAL_CHUNK = 200


def leads_distribute_arrival(
    *,
    lead_id: int,
    trigger: str = Trigger.ARRIVAL,
    chunk: int = ARRIVAL_CHUNK,
    lane: str | None = None,
) -> DistributionAttempt | None:
    """Distribute an arrived lead together with every other lead of its lane pending at that
    moment (CHUNK at a time, oldest first, skipping those another worker holds), in
    batches: under load one task routes many leads, so throughput grows instead of
    collapsing. Returns the arrived lead's attempt (None when it is no longer pending or
    a worker already has it — the others pending are routed all the same).

    1. Lock the arrived lead first (it is routed even behind a backlog of CHUNK older ones).
    2. Open the lane's arrival gate (`queueing.arrival_gate_reset`): arrivals from now on
       publish a task of their own; those before are committed, so this task sees them.
    3. Lock up to CHUNK - 1 other pending leads of its lane (live or bulk), oldest first,
       `SKIP LOCKED`: concurrent arrival tasks take disjoint leads and never wait on each
       other, and a live lead's batch carries no imported row.
    4. Route them all as `leads_distribute_batch` does, oldest first; while a chunk comes
       back full, go on with the next (each its own transaction), for ARRIVAL_SECONDS at
       most, then hand the rest to a new task of the lane.
    """
    from distribution.services.queueing import arrival_gate_reset, lead_continue_arrivals

    started = time.monotonic()
    own_attempt: DistributionAttempt | None = None
    with gc_paused():
        with transaction.atomic():
            own = pending_leads_lock([lead_id], skip_locked=False, limit=1)
            if own:
                lane = own[0].lane
            elif lane is None:
                lane = Lead.objects.filter(pk=lead_id).values_list("lane", flat=True).first()
                if lane is None:  # the lead is gone
                    return None
            arrival_gate_reset(lane)
            others = pending_leads_lock(None, skip_locked=True, limit=chunk, lane=lane)
            leads = own + [lead for lead in others if lead.pk != lead_id][: chunk - len(own)]
            attempts = _route_arrivals(leads, trigger)
            own_attempt = next((a for a in attempts if a.lead_id == lead_id), None)
        while len(leads) >= chunk:  # a backlog: the next chunk of the lane
            if time.monotonic() - started > ARRIVAL_SECONDS:
                lead_continue_arrivals(lead_id=lead_id, lane=lane)
                break
            with transaction.atomic():
                leads = pending_leads_lock(None, skip_locked=True, limit=chunk, lane=lane)
                _route_arrivals(leads, trigger)
    return own_attempt


# an arrival task goes on through a backlog for this long, then queues its continuation
ARRIVAL_SECONDS = 5.0


def _route_arrivals(leads: list[Lead], trigger: str) -> list[DistributionAttempt]:
    if not leads:
        return []
    leads.sort(key=lambda lead: (lead.created_at, lead.pk))
    router = Router(trigger=trigger, automations=True)
    router.attach_originals(leads)
    router.prepare(leads)
    attempts = router.run([router.plan_new(lead) for lead in leads])
    router.flush()
    return attempts


def leads_distribute_batch(
    *,
    trigger: str = Trigger.COMMAND,
    lead_ids: Sequence[int] | None = None,
    limit: int = 500,
    skip_locked: bool = True,
    book: RuleBook | None = None,
) -> list[DistributionAttempt]:
    """Distribute up to LIMIT pending leads in one transaction, oldest first.

    1. Claim the leads: `FOR UPDATE SKIP LOCKED`, so concurrent runs take disjoint leads.
    2. Match each lead's rule (automations first) with the rules loaded once.
    3. Lock the pools those rules use, in id order, and load each once: concurrent pickers
       of a pool take turns, so round robin stays fair and caps exact.
    4. Decide lead by lead, updating the in-memory pools as leads are given out.
    5. Write everything in bulk; e-mails and webhooks after commit.
    """
    with gc_paused(), transaction.atomic():
        # a campaign with a marketplace workflow sells its leads instead (lead_dispatch)
        leads = pending_leads_lock(lead_ids, skip_locked=skip_locked, limit=limit)
        if not leads:
            return []
        router = Router(trigger=trigger, book=book, automations=True)
        router.attach_originals(leads)
        router.prepare(leads)
        attempts = router.run([router.plan_new(lead) for lead in leads])
        router.flush()
    return attempts


def leads_distribute_chunk(*, lead_ids: Sequence[int], trigger: str) -> dict[str, int]:
    """Distribute the pending leads among LEAD_IDS in one batch, oldest first (a queued
    chunk of a rule's backlog); outcome counts. Leads no longer pending are left alone, and
    leads another worker holds are skipped (that worker distributes them)."""
    attempts = leads_distribute_batch(
        trigger=trigger, lead_ids=lead_ids, limit=len(lead_ids) or 1, skip_locked=True
    )
    return dict(Counter(a.outcome for a in attempts))


def leads_distribute_all_pending(
    *,
    trigger: str = Trigger.COMMAND,
    chunk: int = 1000,
    progress: Callable[[int], object] | None = None,
) -> dict[str, int]:
    """Distribute every pending lead in chunks until none is left; outcome counts."""
    outcomes: Counter[str] = Counter()
    while True:
        attempts = leads_distribute_batch(trigger=trigger, limit=chunk)
        if not attempts:
            break
        outcomes.update(a.outcome for a in attempts)
        if progress:
            progress(len(attempts))
    return dict(outcomes)


def leads_next_round(
    *, leads: Sequence[Lead], trigger: str, router: Router | None = None
) -> list[DistributionAttempt]:
    """After an offer round ended unclaimed (locked LEADS): the next in line, the next
    broadcast batch, or the fallback after max_rounds (engine.next_round)."""
    router = router or Router(trigger=trigger)
    history = offered_members([lead.pk for lead in leads])
    router.prepare(leads)
    jobs = []
    for lead in leads:
        rule = router.book.snapshot(lead.rule_id)
        if rule is None or not rule.enabled:
            lead.distribution_state = DistributionState.PENDING
            jobs.append(router.plan_new(lead))
            continue
        offered, last_round = history.get(lead.pk, (frozenset(), 1))
        jobs.append(
            router.job(
                lead, rule=rule, round_no=max(last_round, 1), offered=offered, after_round=True
            )
        )
    attempts = router.run(jobs)
    router.flush()
    return attempts


def leads_release_held(*, now: datetime | None = None, limit: int = 500) -> int:
    """Distribute held leads whose rule's schedule has opened (Beat task)."""
    now = now or timezone.now()
    with transaction.atomic():
        leads = locked_leads(
            skip_locked=True, limit=limit, status=LeadStatus.HELD, held_until__lte=now
        )
        if not leads:
            return 0
        router = Router(now=now, trigger=Trigger.SCHEDULE, automations=False)
        history = offered_members([lead.pk for lead in leads])
        router.prepare(leads)
        jobs = []
        for lead in leads:
            rule = router.book.snapshot(lead.rule_id)
            if rule is None or not rule.enabled:
                jobs.append(router.plan_new(lead))
                continue
            offered, last_round = history.get(lead.pk, (frozenset(), 1))
            jobs.append(router.job(lead, rule=rule, round_no=max(last_round, 1), offered=offered))
        router.run(jobs)
        router.flush()
    return len(leads)
