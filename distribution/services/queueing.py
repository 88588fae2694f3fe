"""Getting leads to the distributor: after commit, by the sweeper, or by a command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from distribution.db.pending import stale_pending_claim
from distribution.models import DistributionAttempt
from leads.models import DistributionState, Lead

logger = logging.getLogger(__name__)
# publishing a task outside a web request (a rule's backlog): a short retry, then the
# sweeper's turn. A lead's arrival publish does not retry (see `_enqueue`).
QUEUE_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def _enqueue(lead_id: int, trigger: str = "arrival", *, queue: str | None = None) -> None:
    """Publish the lead's distribution task with one connection attempt and no retry: this
    runs inside the web request, so a broker outage must cost it nothing (the lead is saved
    and pending; the sweeper re-queues it once the broker is back)."""
    from config.celery import app
    from distribution.tasks import distribute_lead

    options: dict[str, Any] = {"args": [lead_id], "kwargs": {"trigger": trigger}}
    if queue is not None:  # another lane than the task's own (an imported row: bulk)
        options["queue"] = queue
    try:
        if app.conf.task_always_eager:
            distribute_lead.apply_async(**options)
            return
        with app.producer_or_acquire() as producer:
            # kombu otherwise retries the connection for broker_connection_timeout (seconds)
            # even with retry=False: one attempt, then the sweeper's turn
            producer.connection.ensure_connection(max_retries=0)
            distribute_lead.apply_async(**options, producer=producer, retry=False)
    except Exception:  # broker down: the lead stays pending and the sweeper re-queues it
        logger.warning("could not queue lead %s; the sweeper will retry", lead_id, exc_info=True)


def lead_queue_distribution(*, lead_id: int, bulk: bool = False) -> None:
    """Queue the lead's distribution once the current transaction commits: in the live lane,
    or with BULK (a CSV row) in the bulk lane, so an import never delays a live lead."""
    queue = "bulk" if bulk else None
    transaction.on_commit(lambda: _enqueue(lead_id, queue=queue))


def leads_requeue_stale(*, grace: timedelta | None = None, limit: int = 1000) -> int:
    """Re-queue leads still pending after the grace period (a broker outage loses none),
    each at most once per grace period (the visibility window), however often it runs.

    1. Claim the stale pending leads: stamp `queued_at` on those untouched and not queued
       within the window, skipping rows a worker holds (db.pending.stale_pending_claim).
       Leads imported without distribution (`unqueued`) are never taken.
    2. After that commit, publish one task per claimed lead. A failed publish waits for
       the next window: the stamp stands, so a sweep cannot amplify an outage either.
    """
    if grace is None:
        grace = timedelta(seconds=settings.LEADROUTER_PENDING_GRACE_SECONDS)
    now = timezone.now()
    ids = stale_pending_claim(cutoff=now - grace, now=now, limit=limit)
    for lead_id in ids:
        _enqueue(lead_id, trigger="sweeper")
    return len(ids)


def leads_distribute_pending(
    *, trigger: str = "command", progress: Callable[[int], object] | None = None
) -> dict[str, int]:
    """Distribute every pending lead now, in process; safe to run twice or concurrently
    (each run claims its chunks with SKIP LOCKED). Returns counts of outcomes."""
    from distribution.services.distribute import leads_distribute_all_pending
    from distribution.services.marketplace.sale import leads_distribute_marketplace_pending

    # --- leads imported without distribution are asked for now: they become pending -----
    leads_release_unqueued()
    # --- marketplace: leads of a campaign with a workflow are sold first (not routed) ---
    outcomes = leads_distribute_marketplace_pending(trigger=trigger, progress=progress)
    # --- agent routing: every other pending lead -----------------------------------------
    for key, count in leads_distribute_all_pending(trigger=trigger, progress=progress).items():
        outcomes[key] = outcomes.get(key, 0) + count
    return outcomes


def leads_release_unqueued() -> int:
    """Make every lead stored without distribution (`unqueued`) pending; how many."""
    return Lead.objects.filter(distribution_state=DistributionState.UNQUEUED).update(
        distribution_state=DistributionState.PENDING, updated_at=timezone.now()
    )


# --- arrival dispatch: marketplace or agent routing (see docs/decisions.md) ---------------


def lead_dispatch(*, lead_id: int, trigger: str = "arrival") -> DistributionAttempt | None:
    """Distribute a pending lead: the marketplace when its campaign has a workflow, agent
    routing for every other lead."""
    from distribution.selectors.marketplace import lead_has_workflow
    from distribution.services.distribute import lead_distribute
    from distribution.services.marketplace.sale import lead_distribute_marketplace

    if lead_has_workflow(lead_id=lead_id):
        return lead_distribute_marketplace(lead_id=lead_id, trigger=trigger)
    return lead_distribute(lead_id=lead_id, trigger=trigger)


def lead_dispatch_arrival(*, lead_id: int, trigger: str = "arrival") -> DistributionAttempt | None:
    """The arrival task's service: a marketplace lead is sold on its own; an arrived lead
    for agent routing is routed in one batch with the other leads pending now
    (`leads_distribute_arrival`); a re-queued one (sweeper) on its own."""
    from distribution.selectors.marketplace import lead_has_workflow
    from distribution.services.distribute import leads_distribute_arrival

    if trigger != "arrival" or lead_has_workflow(lead_id=lead_id):
        return lead_dispatch(lead_id=lead_id, trigger=trigger)
    return leads_distribute_arrival(lead_id=lead_id, trigger=trigger)
