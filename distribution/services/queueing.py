"""Getting leads to the distributor: after commit, by the sweeper, or by a command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from distribution.models import DistributionAttempt
from leads.models import DistributionState, Lead

logger = logging.getLogger(__name__)
# publishing a task: a short retry, then the sweeper's turn (a lead saved is never lost)
QUEUE_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def _enqueue(lead_id: int, trigger: str = "arrival") -> None:
    from distribution.tasks import distribute_lead

    try:
        distribute_lead.apply_async(
            args=[lead_id],
            kwargs={"trigger": trigger},
            retry=True,
            retry_policy=QUEUE_RETRY,
        )
    except Exception:  # broker down: the lead stays pending and the sweeper re-queues it
        logger.warning("could not queue lead %s; the sweeper will retry", lead_id, exc_info=True)


def lead_queue_distribution(*, lead_id: int) -> None:
    """Queue the lead's distribution once the current transaction commits."""
    transaction.on_commit(lambda: _enqueue(lead_id))


def leads_requeue_stale(*, grace: timedelta | None = None, limit: int = 1000) -> int:
    """Re-queue leads still pending after the grace period (a broker outage loses none)."""
    if grace is None:
        grace = timedelta(seconds=settings.LEADROUTER_PENDING_GRACE_SECONDS)
    cutoff = timezone.now() - grace
    ids = list(
        Lead.objects.filter(distribution_state=DistributionState.PENDING, updated_at__lt=cutoff)
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:limit]
    )
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

    # --- marketplace: leads of a campaign with a workflow are sold first (not routed) ---
    outcomes = leads_distribute_marketplace_pending(trigger=trigger, progress=progress)
    # --- agent routing: every other pending lead -----------------------------------------
    for key, count in leads_distribute_all_pending(trigger=trigger, progress=progress).items():
        outcomes[key] = outcomes.get(key, 0) + count
    return outcomes


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
