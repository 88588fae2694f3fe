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
from leads.models import DistributionState, Lane, Lead

logger = logging.getLogger(__name__)
# publishing a task outside a web request (a rule's backlog): a short retry, then the
# sweeper's turn. A lead's arrival publish does not retry (see `_enqueue`).
QUEUE_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def _enqueue(
    lead_id: int, trigger: str = "arrival", *, queue: str | None = None, lane: str | None = None
) -> bool:
    """Publish the lead's distribution task with one connection attempt and no retry: this
    runs inside the web request, so a broker outage must cost it nothing (the lead is saved
    and pending; the sweeper re-queues it once the broker is back)."""
    from config.celery import app
    from distribution.tasks import distribute_lead

    kwargs: dict[str, Any] = {"trigger": trigger}
    if lane is not None:  # the task opens this lane's arrival gate even if the lead is gone
        kwargs["lane"] = lane
    options: dict[str, Any] = {"args": [lead_id], "kwargs": kwargs}
    if queue is not None:  # another lane than the task's own (an imported row: bulk)
        options["queue"] = queue
    try:
        if app.conf.task_always_eager:
            distribute_lead.apply_async(**options)
            return True
        with app.producer_or_acquire() as producer:
            # kombu otherwise retries the connection for broker_connection_timeout (seconds)
            # even with retry=False: one attempt, then the sweeper's turn
            producer.connection.ensure_connection(max_retries=0)
            distribute_lead.apply_async(**options, producer=producer, retry=False)
        return True
    except Exception:  # broker down: the lead stays pending and the sweeper re-queues it
        logger.warning("could not queue lead %s; the sweeper will retry", lead_id, exc_info=True)
        return False


def lead_queue_distribution(
    *, lead_id: int, bulk: bool = False, campaign_id: int | None = None
) -> None:
    """Queue the lead's distribution once the current transaction commits: in the live lane,
    or with BULK (a CSV row) in the bulk lane, so an import never delays a live lead.

    A lead for agent routing passes the lane's arrival gate (`arrival_gate_enter`): when
    an arrival task of its lane is queued and not yet started, that task's batch takes this
    lead too, so nothing is published — one message routes a burst of arrivals. A lead the
    marketplace sells (its campaign has a workflow) is always published: sales are not
    batched."""
    lane = "bulk" if bulk else "live"
    sold = campaign_id is not None and campaign_id in _workflow_campaign_ids()

    def publish() -> None:
        if not sold:
            gate = arrival_gate_enter(lane)
            if gate is None:  # the broker's Redis does not answer: the sweeper's turn
                logger.warning("could not queue lead %s; the sweeper will retry", lead_id)
                return
            if not gate:
                return  # the lane's queued arrival task routes it
        if sold:
            _enqueue(lead_id, queue="bulk" if bulk else None)
        elif not _enqueue(lead_id, queue="bulk" if bulk else None, lane=lane):
            arrival_gate_reset(lane)  # nothing was queued: the next arrival publishes

    transaction.on_commit(publish)


def lead_continue_arrivals(*, lead_id: int, lane: str) -> None:
    """An arrival task stops inside a backlog: a new task of the lane goes on with it."""
    transaction.on_commit(
        lambda: _enqueue(lead_id, queue="bulk" if lane == Lane.BULK else None, lane=lane)
    )


def _workflow_campaign_ids() -> frozenset[int]:
    from distribution.caches.workflows import workflow_campaign_ids

    return workflow_campaign_ids()


# --- the arrival gate: one queued, unstarted arrival task per lane (Redis brokers) --------
# The key lives beside the broker's queues. It is set (NX) by the arrival that publishes
# and deleted by the task when it starts, before it reads what is pending; an arrival that
# finds it set is committed before that read, so the task's batch takes it. The expiry
# bounds a stalled worker: then one message per ARRIVAL_GATE_MS per lane.
ARRIVAL_GATE_MS = 2000
_gate_clients: dict[str, Any] = {}


def _gate() -> Any | None:
    """The broker's Redis client, or None (another broker, eager tasks, gate off)."""
    from config.celery import app

    url = str(app.conf.broker_url or "")
    if (
        not settings.LEADROUTER_ARRIVAL_COALESCE
        or app.conf.task_always_eager
        or not url.startswith(("redis://", "rediss://"))
    ):
        return None
    client = _gate_clients.get(url)
    if client is None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # one attempt, as the publish: an unreachable broker costs a request nothing more
        client = _gate_clients[url] = redis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, retry=Retry(NoBackoff(), 0)
        )
    return client


def _gate_key(lane: str) -> str:
    """Under the broker's key prefix, if any: brokers sharing a Redis db keep their gates
    apart as they keep their queues."""
    from config.celery import app

    prefix = (app.conf.broker_transport_options or {}).get("global_keyprefix", "")
    return f"{prefix}leadrouter:arrival-queued:{lane}"


def arrival_gate_enter(lane: str) -> bool | None:
    """True when this arrival must publish its task: no arrival task of LANE is queued and
    not yet started (the gate is now set); False when one is (its batch takes the lead);
    None when the broker's Redis does not answer (a publish would fail too: the lead stays
    pending for the sweeper, after one connection attempt). Without a gate (another
    broker, eager tasks, the gate off) always True."""
    client = _gate()
    if client is None:
        return True
    try:
        return bool(client.set(_gate_key(lane), b"1", nx=True, px=ARRIVAL_GATE_MS))
    except Exception:  # the broker is down
        return None


def arrival_gate_reset(lane: str) -> None:
    """An arrival task of LANE starts (or a publish failed): the next arrival publishes."""
    client = _gate()
    if client is None:
        return
    try:
        client.delete(_gate_key(lane))
    except Exception:
        logger.warning("could not reset the %s arrival gate", lane, exc_info=True)


def leads_requeue_stale(*, grace: timedelta | None = None, limit: int = 1000) -> int:
    """Re-queue leads still pending after the grace period (a broker outage loses none),
    each at most once per grace period (the visibility window), however often it runs.

    1. Claim the stale pending leads: stamp `queued_at` on those untouched and not queued
       within the window, skipping rows a worker holds (db.pending.stale_pending_claim).
       Leads imported without distribution (`unqueued`) are never taken.
    2. After that commit, publish one task per claimed lead, in the lead's lane (a live
       lead whose publish failed is still live; an imported row goes to the bulk lane). A
       failed publish waits for the next window: the stamp stands, so a sweep cannot
       amplify an outage either.
    """
    if grace is None:
        grace = timedelta(seconds=settings.LEADROUTER_PENDING_GRACE_SECONDS)
    now = timezone.now()
    claimed = stale_pending_claim(cutoff=now - grace, now=now, limit=limit)
    for lead_id, lane in claimed:  # each into its own lane: an imported row stays bulk
        _enqueue(lead_id, trigger="sweeper", queue="bulk" if lane == Lane.BULK else None)
    return len(claimed)


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


def lead_dispatch_arrival(
    *, lead_id: int, trigger: str = "arrival", lane: str | None = None
) -> DistributionAttempt | None:
    """The arrival task's service: a marketplace lead is sold on its own; an arrived lead
    for agent routing is routed in one batch with the other leads pending now
    (`leads_distribute_arrival`); a re-queued one (sweeper) on its own."""
    from distribution.selectors.marketplace import lead_has_workflow
    from distribution.services.distribute import leads_distribute_arrival

    if trigger != "arrival" or lead_has_workflow(lead_id=lead_id):
        return lead_dispatch(lead_id=lead_id, trigger=trigger)
    return leads_distribute_arrival(lead_id=lead_id, trigger=trigger, lane=lane)
