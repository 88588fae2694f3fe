"""Selling a lead through its workflow's selection rules (seed 000): select on the cached
compiled contracts, lock the chosen ones in id order, re-check them exactly, persist the
outbound leads and record the attempt; on arrival and for every pending lead."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.models import Contract
from distribution.caches import market as cache
from distribution.caches.market import MarketIndex
from distribution.db.usage import cap_usage
from distribution.engine import marketplace as engine
from distribution.errors import MarketplaceError
from distribution.loaders.marketplace import (
    CAP_COLUMNS,
    lead_snapshot,
    outbound_records,
    workflow_snapshot,
)
from distribution.models import (
    DistributionAttempt,
    DistributionWindow,
    OutboundLead,
    OutboundMethod,
    Workflow,
    WorkflowMode,
)
from distribution.selectors.marketplace import workflow_for_campaign
from distribution.services.geo import lead_points_resolve
from distribution.services.marketplace.delivery import deliveries_on_commit, outbound_prepare
from distribution.services.marketplace.history import (
    REASON_TEXT,
    attempt_record,
    candidate_lines,
    compact_lines,
    describe_decision,
    reason_histogram,
    rules_tried_lines,
)
from distribution.services.marketplace.state import (
    lead_locked,
    lock_contracts,
    save_lead,
    set_status,
    settle,
    wait_for_batch,
)
from leads.models import DistributionState, Lead, LeadEvent, LeadStatus

Trigger = DistributionAttempt.Trigger

# Lock rounds before giving up on a lead whose chosen contracts keep changing under it.
_LOCK_ROUNDS = 4


def _rng(lead_id: int, now: datetime) -> random.Random:
    # Reproducible for a lead at a moment (the lock rounds re-run the same draw), varied
    # across leads and rechecks.
    return random.Random(f"{lead_id}:{now.timestamp()}")


class _Relock(Exception):
    """The contracts to lock changed in a way that would break id order: retry holding all."""

    def __init__(self, ids: set[int]):
        super().__init__("relock")
        self.ids = ids


def _refresh(
    snapshot: engine.ContractSnapshot, row: dict[str, Any], usage: engine.CapUsage
) -> engine.ContractSnapshot:
    if _has_caps(row):
        caps = engine.CapLimits(
            day=row["cap_day"],
            week=row["cap_week"],
            month=row["cap_month"],
            day_budget=row["budget_day"],
            week_budget=row["budget_week"],
            month_budget=row["budget_month"],
        )
    else:  # as the snapshot loader: no caps, no usage to count
        caps, usage = engine.CapLimits(), engine.CapUsage()
    return replace(
        snapshot,
        price=row["price"],
        active=snapshot.active and row["active"],
        paused=row["paused"],
        max_share_count=row["max_share_count"],
        caps=caps,
        used=usage,
    )


def _has_caps(row: dict[str, Any]) -> bool:
    return any(row[k] is not None for k in CAP_COLUMNS)


def _sale_fields(c: engine.ContractSnapshot) -> tuple[Any, ...]:
    # What a concurrent sale or edit can change in a contract's eligibility for this lead.
    return (c.price, c.active, c.paused, c.max_share_count, c.caps, c.used)


def persist_outbound(
    *,
    lead: Lead,
    decision: engine.SelectionDecision,
    method: str,
    now: datetime,
    actor: Any = None,
    window: DistributionWindow | None = None,
) -> list[OutboundLead]:
    """Create the outbound leads of a decision and move the lead to `distributed`."""
    if not decision.chosen:
        return []
    user = actor if getattr(actor, "pk", None) else None
    rows = [
        OutboundLead(
            lead=lead,
            contract_id=c.contract_id,
            method=method,
            price=c.price,
            created_at=now,
            actor=user,
            window=window,
        )
        for c in decision.chosen
    ]
    to_deliver = outbound_prepare(rows, now=now)  # webhook / e-mail: pending, due now
    created = OutboundLead.objects.bulk_create(rows)
    deliveries_on_commit(to_deliver)
    # Round robin orders by it; the rows are locked by this transaction already.
    Contract.objects.filter(id__in=decision.chosen_ids).update(last_outbound_at=now)
    fields = set_status(
        lead, LeadStatus.DISTRIBUTED, actor=actor, note=f"sold to {len(created)} contract(s)"
    )
    save_lead(lead, fields)
    LeadEvent.objects.create(
        lead=lead,
        kind=LeadEvent.Kind.DISTRIBUTED,
        actor=user,
        message=f"{method}: {len(created)} outbound lead(s), turnover {decision.turnover}",
        data={"contracts": list(decision.chosen_ids), "method": method},
    )
    return created


def _select_locked(
    *,
    lead: Lead,
    workflow: Workflow,
    now: datetime,
    prelocked: set[int],
    point: tuple[float, float] | None = None,
) -> tuple[engine.SelectionDecision, MarketIndex, list[engine.OutboundRecord]]:
    """Run the engine for a locked lead and hold locks on every contract it chooses.

    1. Take the campaign's compiled contracts (`cache.market_index`: cached per process,
       refreshed with the sales made since); lock PRELOCKED (from an earlier round) in id
       order and re-read them exactly.
    2. Select; lock the newly chosen contracts in id order and re-read their caps and usage
       (the cache may not have seen a concurrent sale yet; this read is exact).
    3. Select again on the refreshed contracts until every chosen contract is locked. A new
       contract with a smaller id than one already held raises `_Relock`: the caller rolls
       the savepoint back (releasing the locks) and starts over holding the union.
    """
    assert lead.campaign_id is not None
    records = outbound_records(lead_ids=[lead.pk]).get(lead.pk, [])
    lead_snap = lead_snapshot(lead, records, point)
    wf = workflow_snapshot(workflow)
    index = cache.market_index(campaign_id=lead.campaign_id, now=now)
    with index.lock:
        locked: set[int] = set()

        def recheck(ids: set[int]) -> bool:
            """Lock IDS in id order, re-read them exactly; True when one had changed."""
            fresh = lock_contracts(sorted(ids))
            capped = {i: fresh[i]["timezone"] for i in ids if i in fresh and _has_caps(fresh[i])}
            usage = cap_usage(contracts=capped, now=now)
            changed = False
            for cid in sorted(ids):
                old = index.table.get(cid)
                if old is None:
                    continue
                new = (
                    _refresh(old, fresh[cid], usage.get(cid, engine.CapUsage()))
                    if cid in fresh
                    else replace(old, active=False)
                )  # deleted meanwhile
                if _sale_fields(new) != _sale_fields(old):
                    index.put(new)
                    changed = True
            return changed

        if prelocked:
            recheck(prelocked)
            locked |= prelocked
        decision = engine.select_contracts(lead_snap, index.table, wf, now, _rng(lead.pk, now))
        for _ in range(_LOCK_ROUNDS):
            need = set(decision.chosen_ids) - locked
            if not need:
                return decision, index, records
            if locked and min(need) < max(locked):
                raise _Relock(locked | need)
            changed = recheck(need)
            locked |= need
            if changed:  # someone sold to or edited a chosen contract since the snapshot
                decision = engine.select_contracts(
                    lead_snap, index.table, wf, now, _rng(lead.pk, now)
                )
        raise _Relock(locked | set(decision.chosen_ids))


def _after(
    records: list[engine.OutboundRecord], decision: engine.SelectionDecision, rows: MarketIndex
) -> list[engine.OutboundRecord]:
    by_id: dict[int, engine.ContractSnapshot] = {}
    for cid in decision.chosen_ids:
        found = rows.table.get(cid)
        assert found is not None  # chosen from this table
        by_id[cid] = found
    return [
        *records,
        *(
            engine.OutboundRecord(
                contract_id=c.contract_id,
                company_id=c.company_id,
                max_share_count=by_id[c.contract_id].max_share_count,
                contract_group_id=by_id[c.contract_id].contract_group_id,
            )
            for c in decision.chosen
        ),
    ]


def sell(
    *,
    lead: Lead,
    workflow: Workflow,
    trigger: str,
    now: datetime,
    actor: Any = None,
    window: DistributionWindow | None = None,
) -> tuple[DistributionAttempt, int]:
    """One automatic selection for a locked lead: choose, lock, persist, record.

    Returns the attempt and how many more outbound leads the lead may still get.
    """
    started = time.perf_counter()
    prelocked: set[int] = set()
    # A lead sent without coordinates: its place's (no query when it has its own), once,
    # before any contract is locked and outside the savepoint a relock rolls back.
    point = lead_points_resolve([lead]).get(lead.pk)
    for _ in range(_LOCK_ROUNDS):
        try:
            with transaction.atomic():  # a savepoint: rolling it back releases its locks
                decision, rows, records = _select_locked(
                    lead=lead, workflow=workflow, now=now, prelocked=prelocked, point=point
                )
                created = persist_outbound(
                    lead=lead,
                    decision=decision,
                    method=OutboundMethod.AUTO,
                    now=now,
                    actor=actor,
                    window=window,
                )
                after = lead_snapshot(lead, _after(records, decision, rows))
                histogram = reason_histogram(decision)
                attempt = attempt_record(
                    lead=lead,
                    trigger=trigger,
                    outcome="distributed"
                    if created
                    else str(decision.reason or "nothing_selected"),
                    reason=describe_decision(decision, rows.names, histogram),
                    started=started,
                    actor=actor,
                    candidates=candidate_lines(decision, rows.names),
                    all_candidates=compact_lines(decision),
                    rules_tried=rules_tried_lines(decision, workflow, rows.names, histogram),
                    now=now,
                )
                return attempt, engine.remaining_room(after, workflow_snapshot(workflow))
        except _Relock as exc:
            prelocked = exc.ids
    raise MarketplaceError(
        "contention",
        "The contracts kept changing under this lead; the next recheck or a manager can try again.",
    )


def lead_distribute_marketplace(
    *, lead_id: int, trigger: str = Trigger.ARRIVAL, now: datetime | None = None
) -> DistributionAttempt | None:
    """Distribute a pending lead of a campaign with a workflow; a lead no longer pending is
    left alone (idempotent).

    1. Lock the lead while it is pending.
    2. No campaign (`unassigned`), or a manual workflow (`waiting`): a manager acts.
    3. Window mode: open the window (a batch-optimal workflow leaves the lead to the next
       batch); on_arrival and window: sell now through the selection rules.
    4. A lead that reached its maximum multiplication finishes its window at once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lead = lead_locked(lead_id, distribution_state=DistributionState.PENDING)
        if lead is None:
            return None
        started = time.perf_counter()
        workflow = workflow_for_campaign(campaign_id=lead.campaign_id)
        if lead.campaign_id is None or workflow is None or not workflow.is_automatic:
            outcome = "no_campaign" if lead.campaign_id is None else "manual_workflow"
            text = (
                REASON_TEXT["no_campaign"]
                if lead.campaign_id is None
                else "The campaign's workflow distributes manually: the lead waits for a "
                "manager (manual distribution, a window or cherry-picking)."
            )
            lead.distribution_state = DistributionState.DONE
            waits = LeadStatus.UNASSIGNED if lead.campaign_id is None else LeadStatus.WAITING
            save_lead(
                lead,
                ["distribution_state", *set_status(lead, waits, note=outcome.replace("_", " "))],
            )
            return attempt_record(
                lead=lead, trigger=trigger, outcome=outcome, reason=text, started=started, now=now
            )
        window = None
        if workflow.mode == WorkflowMode.WINDOW:
            window = DistributionWindow.objects.create(
                lead=lead,
                started_at=now,
                ends_at=now + workflow.window_length,
                every=workflow.window_every,
                next_check_at=now + workflow.window_every,
            )
            if workflow.batch_optimal:
                wait_for_batch(lead=lead, window=window, now=now)
                return attempt_record(
                    lead=lead,
                    trigger=trigger,
                    outcome="waiting_for_batch",
                    reason="Batch-optimal workflow: the lead waits in its window "
                    "for the next batch allocation.",
                    started=started,
                    now=now,
                )
        attempt, room = sell(lead=lead, workflow=workflow, trigger=trigger, now=now, window=window)
        settle(lead=lead, window=window, room=room, now=now)
        return attempt


def leads_distribute_marketplace_pending(
    *, trigger: str = Trigger.COMMAND, progress: Callable[[int], object] | None = None
) -> dict[str, int]:
    """Distribute every pending lead whose campaign has a workflow, oldest first; counts of
    outcomes. Safe to run concurrently: each lead is locked and skipped once done."""
    outcomes: dict[str, int] = {}
    ids = list(
        Lead.objects.filter(
            distribution_state=DistributionState.PENDING, campaign__workflow__isnull=False
        )
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    for lead_id in ids:
        try:
            attempt = lead_distribute_marketplace(lead_id=lead_id, trigger=trigger)
        except MarketplaceError as exc:  # contention: it stays pending for the sweeper
            outcomes[exc.code] = outcomes.get(exc.code, 0) + 1
            continue
        key = attempt.outcome if attempt is not None else "skipped"
        outcomes[key] = outcomes.get(key, 0) + 1
        if progress:
            progress(1)
    return outcomes
