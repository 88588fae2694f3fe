"""The marketplace: sell inbound leads to buyer contracts (seed 000).

The only writer of workflows' runtime state: outbound leads, windows and their history.
Decisions come from `distribution.engine.marketplace` (and the batch optimiser); this module
loads snapshots in a bounded number of queries, locks what it must (the lead row, then the
chosen contract rows in id order), persists and records a `DistributionAttempt` for every
attempt, by the system or by a manager.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Contract
from distribution.engine import marketplace as engine
from distribution.models import (
    DistributionAttempt,
    DistributionWindow,
    OutboundLead,
    OutboundMethod,
    ReturnStatus,
    WindowStatus,
    Workflow,
    WorkflowMode,
)
from distribution.selectors import marketplace as sel
from leads.models import DistributionState, Lead, LeadEvent, LeadStatus

Trigger = DistributionAttempt.Trigger
ZERO_D = Decimal(0)
# How many candidate lines an attempt stores; the reason histogram is always complete.
STORED_CANDIDATES = 100
# Lock rounds before giving up on a lead whose chosen contracts keep changing under it.
_LOCK_ROUNDS = 4


class MarketplaceError(Exception):
    """A refused marketplace operation, with a stable `code` and a message for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Relock(Exception):
    """The contracts to lock changed in a way that would break id order: retry holding all."""

    def __init__(self, ids: set[int]):
        super().__init__("relock")
        self.ids = ids


# --------------------------------------------------------------------------- helpers


def _rng(lead_id: int, now: datetime) -> random.Random:
    # Reproducible for a lead at a moment (the lock rounds re-run the same draw), varied
    # across leads and rechecks.
    return random.Random(f"{lead_id}:{now.timestamp()}")


def _lock_contracts(ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Lock contract rows in id order (no deadlocks) and return their fresh sale fields.

    FOR NO KEY UPDATE: inserting an outbound lead (a foreign key to the contract) elsewhere
    does not wait for it, while two sales to the same contract are serialised.
    """
    rows = (
        Contract.objects.select_for_update(no_key=True)
        .filter(id__in=sorted(ids))
        .order_by("id")
        .values(
            "id",
            "price",
            "active",
            "paused",
            "max_share_count",
            "cap_day",
            "cap_week",
            "cap_month",
            "budget_day",
            "budget_week",
            "budget_month",
            "timezone",
        )
    )
    return {r["id"]: dict(r) for r in rows}


def _refresh(
    snapshot: engine.ContractSnapshot, row: dict[str, Any], usage: engine.CapUsage
) -> engine.ContractSnapshot:
    if not _has_caps(row):  # as the snapshot loader: no caps, no usage to count
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
    caps = engine.CapLimits(
        day=row["cap_day"],
        week=row["cap_week"],
        month=row["cap_month"],
        day_budget=row["budget_day"],
        week_budget=row["budget_week"],
        month_budget=row["budget_month"],
    )
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
    return any(
        row[k] is not None
        for k in ("cap_day", "cap_week", "cap_month", "budget_day", "budget_week", "budget_month")
    )


def _sale_fields(c: engine.ContractSnapshot) -> tuple[Any, ...]:
    # What a concurrent sale or edit can change in a contract's eligibility for this lead.
    return (c.price, c.active, c.paused, c.max_share_count, c.caps, c.used)


def _lead_locked(lead_id: int, **filters: Any) -> Lead | None:
    return (
        Lead.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .filter(pk=lead_id, **filters)
        .first()
    )


def _candidate_lines(
    decision: engine.SelectionDecision, names: dict[int, tuple[str, str]]
) -> list[dict[str, Any]]:
    lines = []
    for line in decision.explanation.head(STORED_CANDIDATES):
        contract, company = names.get(line.contract_id, (str(line.contract_id), ""))
        lines.append(
            {
                "contract": contract,
                "company": company,
                "contract_id": line.contract_id,
                "rank": line.rank,
                "rule": line.rule_position,
                "reason": str(line.reason) if line.reason is not None else None,
                "note": str(line.note) if line.note is not None else None,
                "distance_km": round(line.distance_km, 3) if line.distance_km is not None else None,
            }
        )
    return lines


def _histogram(decision: engine.SelectionDecision) -> dict[str, int]:
    counts = decision.explanation.reason_counts()
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _rules_tried(
    decision: engine.SelectionDecision,
    workflow: Workflow | None,
    names: dict[int, tuple[str, str]],
    histogram: dict[str, int],
) -> list[dict[str, Any]]:
    tried: list[dict[str, Any]] = [
        {
            "rule": f"{r.position}. {r.mode} × {r.take}",
            "mode": str(r.mode),
            "take": r.take,
            "considered": r.considered,
            "chosen": [names.get(i, (str(i), ""))[0] for i in r.chosen_ids],
            "turnover": str(r.turnover),
            "skipped": r.skipped,
            "reason": str(r.reason) if r.reason is not None else None,
        }
        for r in decision.rules
    ]
    tried.append(
        {
            "summary": histogram,
            "workflow": workflow.campaign.slug if workflow is not None else None,
            "outbound_before": decision.outbound_count_before,
            "outbound_after": decision.outbound_count_after,
        }
    )
    return tried


_REASON_TEXT = {
    "no_campaign": "The lead has no campaign: it can only be distributed manually or "
    "cherry-picked.",
    "no_selection_rules": "The workflow has no contract selection rules.",
    "no_eligible_contracts": "No contract is eligible for this lead.",
    "nothing_selected": "The selection rules chose no contract.",
    "min_contracts_not_reached": "The selection has fewer contracts than the workflow's "
    "minimum: nothing distributed.",
    "min_turnover_not_reached": "The selection turns over less than the workflow's minimum: "
    "nothing distributed.",
    "multiplication_reached": "The lead already has its maximum number of outbound leads.",
    "share_count_exceeded": "A contract holding the lead allows no more sharing.",
}


def _describe(
    decision: engine.SelectionDecision, names: dict[int, tuple[str, str]], histogram: dict[str, int]
) -> str:
    if decision.chosen:
        sold = ", ".join(
            names.get(c.contract_id, (str(c.contract_id), ""))[0] for c in decision.chosen
        )
        text = f"Sold to {len(decision.chosen)} contract(s): {sold} (turnover {decision.turnover})."
    else:
        code = str(decision.reason) if decision.reason else "nothing_selected"
        text = _REASON_TEXT.get(code, code.replace("_", " ").capitalize() + ".")
    others = {k: v for k, v in histogram.items() if k != "chosen"}
    if others:
        text += " Others: " + ", ".join(f"{n} {k}" for k, n in others.items()) + "."
    return text


def _record(
    *,
    lead: Lead,
    trigger: str,
    outcome: str,
    reason: str,
    started: float,
    actor: Any = None,
    candidates: list[dict[str, Any]] | None = None,
    rules_tried: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> DistributionAttempt:
    return DistributionAttempt.objects.create(
        lead=lead,
        trigger=trigger,
        outcome=outcome,
        reason=reason,
        candidates=candidates or [],
        rules_tried=rules_tried or [],
        actor=actor if getattr(actor, "pk", None) else None,
        duration_ms=(time.perf_counter() - started) * 1000,
        created_at=now or timezone.now(),
    )


# Statuses a marketplace lead has before it is sold; an owned (agent) lead keeps its status.
_UNSOLD = frozenset(
    {
        LeadStatus.PENDING,
        LeadStatus.WAITING,
        LeadStatus.UNASSIGNED,
        LeadStatus.EXCEPTION,
        LeadStatus.HELD,
        LeadStatus.PROSPECT,
    }
)


def _set_status(lead: Lead, status: str, *, actor: Any = None, note: str = "") -> list[str]:
    if lead.status not in _UNSOLD or not lead.can_transition_to(status):
        return []  # an agent's lead, or already there
    event = lead.transition_to(status, by=actor, note=note)
    if event is None:
        return []
    event.save()
    return ["status", "status_changed_at"]


def _save_lead(lead: Lead, fields: list[str]) -> None:
    if fields:
        lead.save(update_fields=sorted({*fields, "updated_at"}))


def _persist_outbound(
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
    created = OutboundLead.objects.bulk_create(
        [
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
    )
    # Round robin orders by it; the rows are locked by this transaction already.
    Contract.objects.filter(id__in=decision.chosen_ids).update(last_outbound_at=now)
    fields = _set_status(
        lead, LeadStatus.DISTRIBUTED, actor=actor, note=f"sold to {len(created)} contract(s)"
    )
    _save_lead(lead, fields)
    LeadEvent.objects.create(
        lead=lead,
        kind=LeadEvent.Kind.DISTRIBUTED,
        actor=user,
        message=f"{method}: {len(created)} outbound lead(s), turnover {decision.turnover}",
        data={"contracts": list(decision.chosen_ids), "method": method},
    )
    return created


# --------------------------------------------------------------------------- selection


def _select_locked(
    *, lead: Lead, workflow: Workflow, now: datetime, prelocked: set[int]
) -> tuple[engine.SelectionDecision, sel.MarketIndex, list[engine.OutboundRecord]]:
    """Run the engine for a locked lead and hold locks on every contract it chooses.

    1. Take the campaign's compiled contracts (`sel.market_index`: cached per process,
       refreshed with the sales made since); lock PRELOCKED (from an earlier round) in id
       order and re-read them exactly.
    2. Select; lock the newly chosen contracts in id order and re-read their caps and usage
       (the cache may not have seen a concurrent sale yet; this read is exact).
    3. Select again on the refreshed contracts until every chosen contract is locked. A new
       contract with a smaller id than one already held raises `_Relock`: the caller rolls
       the savepoint back (releasing the locks) and starts over holding the union.
    """
    assert lead.campaign_id is not None
    records = sel.outbound_records(lead_ids=[lead.pk]).get(lead.pk, [])
    lead_snap = sel.lead_snapshot(lead, records)
    wf = sel.workflow_snapshot(workflow)
    index = sel.market_index(campaign_id=lead.campaign_id, now=now)
    with index.lock:
        locked: set[int] = set()

        def recheck(ids: set[int]) -> bool:
            """Lock IDS in id order, re-read them exactly; True when one had changed."""
            fresh = _lock_contracts(sorted(ids))
            capped = {i: fresh[i]["timezone"] for i in ids if i in fresh and _has_caps(fresh[i])}
            usage = sel.cap_usage(contracts=capped, now=now)
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
    records: list[engine.OutboundRecord], decision: engine.SelectionDecision, rows: sel.MarketIndex
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


def _sell(
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
    for _ in range(_LOCK_ROUNDS):
        try:
            with transaction.atomic():  # a savepoint: rolling it back releases its locks
                decision, rows, records = _select_locked(
                    lead=lead, workflow=workflow, now=now, prelocked=prelocked
                )
                created = _persist_outbound(
                    lead=lead,
                    decision=decision,
                    method=OutboundMethod.AUTO,
                    now=now,
                    actor=actor,
                    window=window,
                )
                after = sel.lead_snapshot(lead, _after(records, decision, rows))
                histogram = _histogram(decision)
                attempt = _record(
                    lead=lead,
                    trigger=trigger,
                    outcome="distributed"
                    if created
                    else str(decision.reason or "nothing_selected"),
                    reason=_describe(decision, rows.names, histogram),
                    started=started,
                    actor=actor,
                    candidates=_candidate_lines(decision, rows.names),
                    rules_tried=_rules_tried(decision, workflow, rows.names, histogram),
                    now=now,
                )
                return attempt, engine.remaining_room(after, sel.workflow_snapshot(workflow))
        except _Relock as exc:
            prelocked = exc.ids
    raise MarketplaceError(
        "contention",
        "The contracts kept changing under this lead; the next recheck or a manager can try again.",
    )


def _close_window(
    window: DistributionWindow,
    lead: Lead,
    *,
    status: str,
    reason: str,
    now: datetime,
    actor: Any = None,
) -> None:
    """Close a window; a lead that was not sold waits for a manager (manual distribution,
    a new window or cherry-picking)."""
    window.status = status
    window.closed_at = now
    window.close_reason = reason
    window.next_check_at = None
    window.save(
        update_fields=[
            "status",
            "closed_at",
            "close_reason",
            "next_check_at",
            "checks",
            "last_checked_at",
        ]
    )
    lead.distribution_state = DistributionState.DONE
    fields = ["distribution_state"]
    if lead.status != LeadStatus.DISTRIBUTED:
        fields += _set_status(
            lead,
            LeadStatus.WAITING,
            actor=actor,
            note=f"window {status}: {reason.replace('_', ' ')}",
        )
    _save_lead(lead, fields)
    LeadEvent.objects.create(
        lead=lead,
        kind=LeadEvent.Kind.NOTE,
        actor=actor if getattr(actor, "pk", None) else None,
        message=f"Auto-distribution window {status} ({reason.replace('_', ' ')})",
        data={"window": window.pk, "status": status, "reason": reason},
    )


def _settle(
    *, lead: Lead, window: DistributionWindow | None, room: int, now: datetime, actor: Any = None
) -> None:
    """After a check: finish a full window, schedule the next check, or end distribution."""
    if window is None:
        lead.distribution_state = DistributionState.DONE
        fields = ["distribution_state"]
        if lead.status != LeadStatus.DISTRIBUTED:
            fields += _set_status(
                lead, LeadStatus.WAITING, actor=actor, note="no contract bought it"
            )
        _save_lead(lead, fields)
        return
    window.checks += 1
    window.last_checked_at = now
    if room <= 0:
        _close_window(
            window,
            lead,
            status=WindowStatus.FINISHED,
            reason="multiplication_reached",
            now=now,
            actor=actor,
        )
        return
    if window.status == WindowStatus.ACTIVE:
        window.next_check_at = min(now + window.every, window.ends_at)
    window.save(update_fields=["checks", "last_checked_at", "next_check_at"])
    lead.distribution_state = DistributionState.ACTIVE
    fields = ["distribution_state"]
    if lead.status != LeadStatus.DISTRIBUTED:
        fields += _set_status(
            lead, LeadStatus.WAITING, actor=actor, note="in an auto-distribution window"
        )
    _save_lead(lead, fields)


def _wait_for_batch(
    *, lead: Lead, window: DistributionWindow, now: datetime, actor: Any = None
) -> None:
    """A batch-optimal window sells nothing by itself: it is due for the next batch."""
    window.next_check_at = now
    window.save(update_fields=["next_check_at"])
    lead.distribution_state = DistributionState.ACTIVE
    fields = ["distribution_state"]
    if lead.status != LeadStatus.DISTRIBUTED:
        fields += _set_status(
            lead,
            LeadStatus.WAITING,
            actor=actor,
            note="waiting in a window for the batch allocation",
        )
    _save_lead(lead, fields)


# --------------------------------------------------------------------------- arrival


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
        lead = _lead_locked(lead_id, distribution_state=DistributionState.PENDING)
        if lead is None:
            return None
        started = time.perf_counter()
        workflow = sel.workflow_for_campaign(campaign_id=lead.campaign_id)
        if lead.campaign_id is None or workflow is None or not workflow.is_automatic:
            outcome = "no_campaign" if lead.campaign_id is None else "manual_workflow"
            text = (
                _REASON_TEXT["no_campaign"]
                if lead.campaign_id is None
                else "The campaign's workflow distributes manually: the lead waits for a "
                "manager (manual distribution, a window or cherry-picking)."
            )
            lead.distribution_state = DistributionState.DONE
            waits = LeadStatus.UNASSIGNED if lead.campaign_id is None else LeadStatus.WAITING
            _save_lead(
                lead,
                ["distribution_state", *_set_status(lead, waits, note=outcome.replace("_", " "))],
            )
            return _record(
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
                _wait_for_batch(lead=lead, window=window, now=now)
                return _record(
                    lead=lead,
                    trigger=trigger,
                    outcome="waiting_for_batch",
                    reason="Batch-optimal workflow: the lead waits in its window "
                    "for the next batch allocation.",
                    started=started,
                    now=now,
                )
        attempt, room = _sell(lead=lead, workflow=workflow, trigger=trigger, now=now, window=window)
        _settle(lead=lead, window=window, room=room, now=now)
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


# --------------------------------------------------------------------------- windows


def _window_locked(
    window_id: int, *statuses: str, skip_locked: bool = False
) -> DistributionWindow | None:
    qs = DistributionWindow.objects.select_for_update(skip_locked=skip_locked)
    return qs.filter(pk=window_id, status__in=statuses).first()


def window_recheck(
    *, window_id: int, now: datetime | None = None, trigger: str = Trigger.RECHECK
) -> DistributionAttempt | None:
    """Recheck a due window for newly eligible contracts; finish it when the lead is full
    or the window has ended. Not due, not active or being rechecked elsewhere: nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        window = _window_locked(window_id, WindowStatus.ACTIVE, skip_locked=True)
        if window is None or (window.next_check_at is not None and window.next_check_at > now):
            return None
        lead = _lead_locked(window.lead_id)
        assert lead is not None  # the window's foreign key cascades
        workflow = sel.workflow_for_campaign(campaign_id=lead.campaign_id)
        if now >= window.ends_at:
            _close_window(window, lead, status=WindowStatus.FINISHED, reason="ended", now=now)
            return None
        if workflow is None or lead.campaign_id is None:
            _close_window(window, lead, status=WindowStatus.FINISHED, reason="no_workflow", now=now)
            return None
        attempt, room = _sell(lead=lead, workflow=workflow, trigger=trigger, now=now, window=window)
        _settle(lead=lead, window=window, room=room, now=now)
        return attempt


def windows_recheck_due(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Recheck every due window; a batch-optimal workflow allocates all its windows at once.

    Returns counts of outcomes.
    """
    now = now or timezone.now()
    counts: dict[str, int] = {}
    due = sel.windows_due(now=now, limit=limit)
    for workflow_id in sorted({wf for _, wf, batch in due if batch and wf is not None}):
        result = workflow_allocate_batch(workflow_id=workflow_id, now=now)
        for key in ("distributed", "not_distributed", "finished"):
            if result.get(key):
                counts[key] = counts.get(key, 0) + int(result[key])
    for window_id, wf, batch in due:
        if batch and wf is not None:
            continue
        try:
            attempt = window_recheck(window_id=window_id, now=now)
        except MarketplaceError:
            attempt = None
        key = attempt.outcome if attempt is not None else "closed_or_skipped"
        counts[key] = counts.get(key, 0) + 1
    return counts


def window_open(
    *,
    lead_id: int,
    actor: Any = None,
    duration: timedelta | None = None,
    every: timedelta | None = None,
    now: datetime | None = None,
) -> DistributionWindow:
    """Give a lead outside a window a new auto-distribution window and check it at once.

    The lead needs a campaign with a workflow (its selection rules choose the contracts);
    duration and interval default to the workflow's.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lead = _lead_locked(lead_id)
        if lead is None:
            raise MarketplaceError("not_found", "No such lead.")
        if lead.campaign_id is None:
            raise MarketplaceError("no_campaign", _REASON_TEXT["no_campaign"])
        workflow = sel.workflow_for_campaign(campaign_id=lead.campaign_id)
        if workflow is None:
            raise MarketplaceError(
                "no_workflow", "The lead's campaign has no workflow with contract selection rules."
            )
        if sel.window_open_for_lead(lead_id=lead.pk) is not None:
            raise MarketplaceError(
                "window_open", "The lead is already in a window: pause, edit or stop it instead."
            )
        records = sel.outbound_records(lead_ids=[lead.pk]).get(lead.pk, [])
        if (
            engine.remaining_room(sel.lead_snapshot(lead, records), sel.workflow_snapshot(workflow))
            <= 0
        ):
            raise MarketplaceError(
                "multiplication_reached",
                _REASON_TEXT["multiplication_reached"] + " A window would find nothing to do.",
            )
        length = duration or workflow.window_length
        step = every or workflow.window_every
        if length.total_seconds() <= 0 or step.total_seconds() <= 0:
            raise MarketplaceError("invalid", "Duration and interval must be positive.")
        window = DistributionWindow.objects.create(
            lead=lead,
            started_at=now,
            ends_at=now + length,
            every=step,
            next_check_at=now,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.NOTE,
            actor=window.created_by,
            message=f"Auto-distribution window added until {window.ends_at:%Y-%m-%d %H:%M}",
            data={"window": window.pk},
        )
        if workflow.batch_optimal:
            _wait_for_batch(lead=lead, window=window, now=now, actor=actor)
            return window
        _attempt, room = _sell(
            lead=lead,
            workflow=workflow,
            trigger=Trigger.MANUAL,
            now=now,
            actor=actor,
            window=window,
        )
        _settle(lead=lead, window=window, room=room, now=now, actor=actor)
        return window


def _window_move(
    window_id: int,
    *,
    was: str,
    to: str,
    next_check_at: datetime | None,
    refused: MarketplaceError,
    actor: Any,
    what: str,
) -> DistributionWindow:
    """Move a window in status WAS to status TO (pause / resume), with its next check."""
    with transaction.atomic():
        window = _window_locked(window_id, was)
        if window is None:
            raise refused
        window.status = to
        window.next_check_at = next_check_at
        window.save(update_fields=["status", "next_check_at"])
        _window_event(window, actor, what)
        return window


def window_pause(
    *, window_id: int, actor: Any = None, now: datetime | None = None
) -> DistributionWindow:
    """Pause an active window: no rechecks until it is resumed (its end stays)."""
    return _window_move(
        window_id,
        was=WindowStatus.ACTIVE,
        to=WindowStatus.PAUSED,
        next_check_at=None,
        refused=MarketplaceError("not_active", "Only an active window can be paused."),
        actor=actor,
        what="paused",
    )


def window_resume(
    *, window_id: int, actor: Any = None, now: datetime | None = None
) -> DistributionWindow:
    """Resume a paused window; it is rechecked at once."""
    return _window_move(
        window_id,
        was=WindowStatus.PAUSED,
        to=WindowStatus.ACTIVE,
        next_check_at=now or timezone.now(),
        refused=MarketplaceError("not_paused", "Only a paused window can be resumed."),
        actor=actor,
        what="resumed",
    )


def window_stop(
    *, window_id: int, actor: Any = None, now: datetime | None = None
) -> DistributionWindow:
    """Stop an active or paused window for good; the lead leaves automatic distribution."""
    now = now or timezone.now()
    with transaction.atomic():
        window = _window_locked(window_id, WindowStatus.ACTIVE, WindowStatus.PAUSED)
        if window is None:
            raise MarketplaceError("not_open", "The window is already stopped or finished.")
        lead = _lead_locked(window.lead_id)
        assert lead is not None
        _close_window(
            window, lead, status=WindowStatus.STOPPED, reason="stopped", now=now, actor=actor
        )
        return window


def window_edit(
    *,
    window_id: int,
    actor: Any = None,
    ends_at: datetime | None = None,
    every: timedelta | None = None,
    now: datetime | None = None,
) -> DistributionWindow:
    """Change an open window's end and recheck interval."""
    now = now or timezone.now()
    with transaction.atomic():
        window = _window_locked(window_id, WindowStatus.ACTIVE, WindowStatus.PAUSED)
        if window is None:
            raise MarketplaceError("not_open", "Only an active or paused window can be edited.")
        if ends_at is not None and ends_at <= now:
            raise MarketplaceError("invalid", "The new end must be in the future.")
        if every is not None and every.total_seconds() <= 0:
            raise MarketplaceError("invalid", "The interval must be positive.")
        window.ends_at = ends_at or window.ends_at
        window.every = every or window.every
        if window.status == WindowStatus.ACTIVE:
            base = window.last_checked_at or now
            window.next_check_at = min(max(base + window.every, now), window.ends_at)
        window.save(update_fields=["ends_at", "every", "next_check_at"])
        _window_event(
            window, actor, f"edited: ends {window.ends_at:%Y-%m-%d %H:%M}, every {window.every}"
        )
        return window


def _window_event(window: DistributionWindow, actor: Any, what: str) -> None:
    LeadEvent.objects.create(
        lead_id=window.lead_id,
        kind=LeadEvent.Kind.NOTE,
        actor=actor if getattr(actor, "pk", None) else None,
        message=f"Auto-distribution window {what}",
        data={"window": window.pk},
    )


# --------------------------------------------------------------------------- by a manager


def lead_distribute_manually(
    *, lead_id: int, contract_ids: Sequence[int], actor: Any, now: datetime | None = None
) -> DistributionAttempt:
    """Sell a lead to the contracts a manager picked, in order, within the hard limits.

    A contract is refused (with its reason in the attempt) when inactive, when its company
    or group already has the lead, or when the workflow's maximum multiplication or a max
    share count would break; softer findings (caps, area, hours…) are noted, not blocking.
    Not allowed while the lead is in a window (pause, edit or stop it instead).
    """
    now = now or timezone.now()
    started = time.perf_counter()
    ids = list(dict.fromkeys(int(i) for i in contract_ids))
    if not ids:
        raise MarketplaceError("no_contracts", "Pick at least one contract.")
    with transaction.atomic():
        lead = _lead_locked(lead_id)
        if lead is None:
            raise MarketplaceError("not_found", "No such lead.")
        if sel.window_open_for_lead(lead_id=lead.pk) is not None:
            raise MarketplaceError(
                "window_open",
                "The lead is in an auto-distribution window: pause, edit or stop it first.",
            )
        _lock_contracts(ids)  # before reading usage, so caps shown are exact
        workflow = sel.workflow_for_campaign(campaign_id=lead.campaign_id)
        records = sel.outbound_records(lead_ids=[lead.pk]).get(lead.pk, [])
        rows = sel.contract_snapshots(
            contracts=Contract.objects.filter(id__in=ids),
            now=now,
        )
        by_id = rows.by_id()
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise MarketplaceError("unknown_contract", f"No contract with id {missing[0]}.")
        decision = engine.check_manual_selection(
            sel.lead_snapshot(lead, records),
            [by_id[i] for i in ids],
            sel.workflow_snapshot(workflow),
            now,
        )
        created = _persist_outbound(
            lead=lead, decision=decision, method=OutboundMethod.MANUAL, now=now, actor=actor
        )
        if created and lead.distribution_state != DistributionState.DONE:
            lead.distribution_state = DistributionState.DONE
            _save_lead(lead, ["distribution_state"])
        refused = [line for line in decision.candidates if line.reason is not None]
        histogram = _histogram(decision)
        text = (
            _describe(decision, rows.names, histogram)
            if created
            else (
                "Refused: "
                + "; ".join(f"{rows.names[line.contract_id][0]}: {line.reason}" for line in refused)
                + "."
            )
        )
        return _record(
            lead=lead,
            trigger=Trigger.MANUAL,
            outcome="distributed" if created else "refused",
            reason=text,
            started=started,
            actor=actor,
            candidates=_candidate_lines(decision, rows.names),
            rules_tried=_rules_tried(decision, workflow, rows.names, histogram),
            now=now,
        )


def lead_cherry_pick(
    *,
    lead_id: int,
    contract_id: int,
    actor: Any,
    price: Decimal | None = None,
    now: datetime | None = None,
) -> OutboundLead:
    """Hand an inbound lead to a contract a manager chose (method cherry_pick).

    It does not count as distributed, toward share counts or toward caps, and distribution
    does not count it either: no status change, no cap check. Only a company (or contract
    group) that already has the lead is refused.
    """
    now = now or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        lead = _lead_locked(lead_id)
        if lead is None:
            raise MarketplaceError("not_found", "No such lead.")
        contract = Contract.objects.select_related("company").filter(pk=contract_id).first()
        if contract is None:
            raise MarketplaceError("unknown_contract", f"No contract with id {contract_id}.")
        held = OutboundLead.objects.filter(lead=lead).filter(
            _company_or_group(contract.company_id, contract.group_id)
        )
        if held.exists():
            raise MarketplaceError("already_received", f"{contract.company} already has this lead.")
        amount = contract.price if price is None else price
        if amount < 0:
            raise MarketplaceError("invalid", "The price cannot be negative.")
        user = actor if getattr(actor, "pk", None) else None
        outbound = OutboundLead.objects.create(
            lead=lead,
            contract=contract,
            method=OutboundMethod.CHERRY_PICK,
            price=amount,
            created_at=now,
            actor=user,
        )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.DISTRIBUTED,
            actor=user,
            message=f"cherry-picked for {contract} ({amount})",
            data={"contracts": [contract.pk], "method": "cherry_pick"},
        )
        _record(
            lead=lead,
            trigger=Trigger.MANUAL,
            outcome="cherry_picked",
            reason=f"Cherry-picked for {contract} ({contract.company}) at {amount}; not "
            "counted as distributed, toward share counts or caps.",
            started=started,
            actor=actor,
            candidates=[
                {
                    "contract": contract.name,
                    "company": contract.company.name,
                    "contract_id": contract.pk,
                    "rank": 1,
                    "rule": None,
                    "reason": None,
                    "note": "cherry_pick",
                    "distance_km": None,
                }
            ],
            now=now,
        )
        return outbound


def _company_or_group(company_id: int, group_id: int | None) -> Q:
    q = Q(contract__company_id=company_id)
    if group_id is not None:
        q |= Q(contract__group_id=group_id)
    return q


# --------------------------------------------------------------------------- returns


def _outbound_locked(outbound_id: int) -> OutboundLead:
    outbound = (
        OutboundLead.objects.select_for_update(of=("self",))
        .select_related("contract")
        .filter(pk=outbound_id)
        .first()
    )
    if outbound is None:
        raise MarketplaceError("not_found", "No such outbound lead.")
    return outbound


def outbound_return_request(
    *, outbound_id: int, reason: str, actor: Any = None, now: datetime | None = None
) -> OutboundLead:
    """A buyer returns an outbound lead, with a reason; a manager decides later."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise MarketplaceError("reason_required", "A return needs a reason.")
    with transaction.atomic():
        outbound = _outbound_locked(outbound_id)
        if outbound.return_status != ReturnStatus.NONE:
            raise MarketplaceError("already_returned", "This outbound lead was already returned.")
        outbound.return_status = ReturnStatus.REQUESTED
        outbound.return_reason = reason[:500]
        outbound.returned_at = now
        outbound.save(update_fields=["return_status", "return_reason", "returned_at"])
        _return_event(outbound, actor, f"return requested: {reason[:200]}")
        return outbound


def outbound_return_approve(
    *, outbound_id: int, actor: Any, note: str = "", now: datetime | None = None
) -> OutboundLead:
    """Approve a requested return: the buyer's cap and budget are credited (the outbound
    lead no longer counts toward them) and turnover reports show it as returned."""
    return _return_decide(
        outbound_id=outbound_id, actor=actor, note=note, now=now, status=ReturnStatus.APPROVED
    )


def outbound_return_deny(
    *, outbound_id: int, actor: Any, note: str = "", now: datetime | None = None
) -> OutboundLead:
    """Deny a requested return: the outbound lead keeps counting as sold."""
    return _return_decide(
        outbound_id=outbound_id, actor=actor, note=note, now=now, status=ReturnStatus.DENIED
    )


def _return_decide(
    *, outbound_id: int, actor: Any, note: str, now: datetime | None, status: str
) -> OutboundLead:
    now = now or timezone.now()
    with transaction.atomic():
        outbound = _outbound_locked(outbound_id)
        if outbound.return_status != ReturnStatus.REQUESTED:
            raise MarketplaceError(
                "no_return_requested", "No return is waiting for a decision on this outbound lead."
            )
        outbound.return_status = status
        outbound.return_decided_at = now
        outbound.return_decided_by = actor if getattr(actor, "pk", None) else None
        outbound.return_note = note[:500]
        outbound.save(
            update_fields=["return_status", "return_decided_at", "return_decided_by", "return_note"]
        )
        _return_event(outbound, actor, f"return {status}" + (f": {note[:200]}" if note else ""))
        return outbound


def _return_event(outbound: OutboundLead, actor: Any, text: str) -> None:
    LeadEvent.objects.create(
        lead_id=outbound.lead_id,
        kind=LeadEvent.Kind.NOTE,
        actor=actor if getattr(actor, "pk", None) else None,
        message=f"{outbound.contract}: {text}",
        data={"outbound": outbound.pk, "return": outbound.return_status},
    )


# --------------------------------------------------------------------------- contracts


def contract_pause(*, contract_id: int, actor: Any = None) -> Contract:
    """Pause a contract (the buyer stops buying for a while; nothing else changes)."""
    return _contract_set_paused(contract_id=contract_id, paused=True)


def contract_resume(*, contract_id: int, actor: Any = None) -> Contract:
    """Resume a paused contract."""
    return _contract_set_paused(contract_id=contract_id, paused=False)


def _contract_set_paused(*, contract_id: int, paused: bool) -> Contract:
    with transaction.atomic():
        contract = Contract.objects.select_for_update(no_key=True).filter(pk=contract_id).first()
        if contract is None:
            raise MarketplaceError("unknown_contract", f"No contract with id {contract_id}.")
        if contract.paused != paused:
            contract.paused = paused
            contract.save(update_fields=["paused", "updated_at"])
        return contract


# --------------------------------------------------------------------------- batch-optimal


def workflow_allocate_batch(
    *, workflow_id: int, now: datetime | None = None, time_limit: float = 30.0
) -> dict[str, Any]:
    """Allocate every lead waiting in an active window of a batch-optimal workflow at once.

    1. Lock the workflow's active windows (skipping those being rechecked elsewhere), their
       leads in id order, then the campaign's contracts in id order; only then read usage,
       so caps and budgets are exact for the whole batch.
    2. Finish the windows that ended; the others' leads become batch leads with their
       eligible contracts (the engine's eligibility) and outbound situation.
    3. `optimise_batch` (a MILP solved by HiGHS, never worse than greedy in arrival order)
       allocates them under caps, budgets, share counts, multiplication and minimums.
    4. Persist the outbound leads, record one attempt per lead, and reschedule or finish
       each window.
    Returns figures of the run (counts, turnover, solver status).
    """
    from distribution.engine.marketplace import batch, optimizer

    now = now or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        workflow = (
            Workflow.objects.select_related("campaign")
            .prefetch_related("selection_rules")
            .filter(pk=workflow_id)
            .first()
        )
        if workflow is None:
            return {}
        windows = list(
            DistributionWindow.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=WindowStatus.ACTIVE, lead__campaign_id=workflow.campaign_id)
            .order_by("lead_id", "id")
        )
        leads = {
            lead.pk: lead
            for lead in Lead.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk__in=[w.lead_id for w in windows])
            .order_by("id")
        }
        figures: dict[str, Any] = {
            "windows": len(windows),
            "finished": 0,
            "distributed": 0,
            "not_distributed": 0,
            "outbound": 0,
            "turnover": ZERO_D,
        }
        live: list[DistributionWindow] = []
        for window in windows:
            if now >= window.ends_at:
                _close_window(
                    window,
                    leads[window.lead_id],
                    status=WindowStatus.FINISHED,
                    reason="ended",
                    now=now,
                )
                figures["finished"] += 1
            else:
                live.append(window)
        if not live:
            return figures
        contracts = sel.contracts_for_campaign(campaign_id=workflow.campaign_id, today=now.date())
        _lock_contracts(list(contracts.values_list("id", flat=True)))
        rows = sel.contract_snapshots(
            contracts=contracts,
            now=now,
            campaign_id=workflow.campaign_id,
        )
        records = sel.outbound_records(lead_ids=[w.lead_id for w in live])
        wf = sel.workflow_snapshot(workflow)
        snaps = {
            w.lead_id: sel.lead_snapshot(leads[w.lead_id], records.get(w.lead_id, [])) for w in live
        }
        batch_leads = [batch.batch_lead(snaps[w.lead_id], rows.snapshots, wf, now) for w in live]
        allocation = optimizer.optimise_batch(
            batch_leads,
            [batch.batch_contract(c) for c in rows.snapshots],
            time_limit=time_limit,
        )
        by_contract = rows.by_id()
        batch_run = {
            "batch": allocation.method,
            "status": allocation.status,
            "objective": str(allocation.objective),
            "leads": len(live),
            "workflow": workflow.campaign.slug,
        }
        outbound: list[OutboundLead] = []
        attempts: list[DistributionAttempt] = []
        elapsed = (time.perf_counter() - started) * 1000
        for window, blead in zip(live, batch_leads, strict=True):
            lead = leads[window.lead_id]
            sold = allocation.by_lead.get(lead.pk, ())
            outbound += [
                OutboundLead(
                    lead=lead,
                    contract_id=a.contract_id,
                    method=OutboundMethod.AUTO,
                    price=a.price,
                    created_at=now,
                    window=window,
                )
                for a in sold
            ]
            sold_ids = {a.contract_id for a in sold}
            lines = [_batch_line(by_contract[a.contract_id], rows.names, None) for a in sold]
            lines += [
                _batch_line(by_contract[o.contract_id], rows.names, "not_selected_batch")
                for o in blead.offers
                if o.contract_id not in sold_ids
            ][: STORED_CANDIDATES - len(lines)]
            turnover = sum((a.price for a in sold), ZERO_D)
            attempts.append(
                DistributionAttempt(
                    lead=lead,
                    trigger=Trigger.RECHECK,
                    outcome="distributed" if sold else "not_selected_batch",
                    reason=(
                        f"Batch allocation ({allocation.method}, {allocation.status}) over "
                        f"{len(live)} waiting lead(s): sold to {len(sold)} contract(s), "
                        f"turnover {turnover}; {len(blead.offers)} eligible."
                    ),
                    candidates=lines,
                    rules_tried=[batch_run],
                    duration_ms=elapsed,
                    created_at=now,
                )
            )
            figures["distributed" if sold else "not_distributed"] += 1
            figures["turnover"] += turnover
        OutboundLead.objects.bulk_create(outbound)
        DistributionAttempt.objects.bulk_create(attempts)
        figures["outbound"] = len(outbound)
        touched = {o.contract_id for o in outbound}
        if touched:
            Contract.objects.filter(id__in=touched).update(last_outbound_at=now)
        by_lead: dict[int, list[engine.OutboundRecord]] = {}
        for o in outbound:
            c = by_contract[o.contract_id]
            by_lead.setdefault(o.lead_id, []).append(
                engine.OutboundRecord(
                    contract_id=c.id,
                    company_id=c.company_id,
                    max_share_count=c.max_share_count,
                    contract_group_id=c.contract_group_id,
                )
            )
        for window in live:
            lead = leads[window.lead_id]
            new = by_lead.get(lead.pk, [])
            if new:
                _save_lead(
                    lead,
                    _set_status(
                        lead, LeadStatus.DISTRIBUTED, note=f"sold to {len(new)} contract(s) (batch)"
                    ),
                )
                LeadEvent.objects.create(
                    lead=lead,
                    kind=LeadEvent.Kind.DISTRIBUTED,
                    message=f"auto (batch): {len(new)} outbound lead(s)",
                    data={"contracts": [r.contract_id for r in new], "method": "auto"},
                )
            after = snaps[lead.pk].with_outbound([*records.get(lead.pk, []), *new])
            _settle(lead=lead, window=window, room=engine.remaining_room(after, wf), now=now)
        figures.update(
            method=allocation.method,
            status=allocation.status,
            turnover=str(figures["turnover"]),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return figures


def _batch_line(
    contract: engine.ContractSnapshot, names: dict[int, tuple[str, str]], reason: str | None
) -> dict[str, Any]:
    name, company = names.get(contract.id, (str(contract.id), ""))
    return {
        "contract": name,
        "company": company,
        "contract_id": contract.id,
        "rank": None,
        "rule": None,
        "reason": reason,
        "note": "batch_optimal",
        "distance_km": None,
    }
