"""Contract selection: the workflow's rules in position order, each taking contracts in its
mode's order (qs, random, round robin, distance, free trial) or as the exact best subset
(turnover, lead count), within the share-count rule; the decision with its explanation."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import chain

import numpy as np

from distribution.engine.marketplace.eligibility import LeadContext, Screened, already_holds
from distribution.engine.marketplace.explanation import (
    Entry,
    Event,
    Explanation,
    Ranked,
    RankedKeys,
    RankedTail,
    Relabel,
    entry_id,
)
from distribution.engine.marketplace.geo import EARTH_MEAN_KM, SLACK_KM, SPHERE_LOW
from distribution.engine.marketplace.shares import (
    lead_limit,
    multiplication_reached,
    sizes_tolerated,
    tolerates,
)
from distribution.engine.marketplace.subsets import SubsetItem, best_subset
from distribution.engine.marketplace.table import ContractTable, screen
from distribution.engine.marketplace.types import (
    ZERO,
    ChosenContract,
    ContractSnapshot,
    InboundLeadSnapshot,
    Reason,
    RuleOutcome,
    SelectionDecision,
    SelectionMode,
    SelectionRuleSnapshot,
    WorkflowSnapshot,
)


class LeadState:
    """The lead's outbound situation while rules choose (copied per rule, committed after):
    its count, the share-count limit so far, and the companies and groups holding it."""

    __slots__ = ("companies", "count", "groups", "limit", "max_mult")

    def __init__(
        self, count: int, limit: int, max_mult: int | None, companies: set[int], groups: set[int]
    ) -> None:
        self.count = count
        self.limit = limit
        self.max_mult = max_mult
        self.companies = companies
        self.groups = groups

    @classmethod
    def initial(cls, lead: InboundLeadSnapshot, workflow: WorkflowSnapshot) -> LeadState:
        """The state before any rule: the lead's holders and its share-count limit."""
        return cls(
            lead.outbound_count,
            lead_limit(lead, workflow),
            workflow.max_multiplication,
            set(lead.received_company_ids),
            set(lead.received_group_ids),
        )

    def copy(self) -> LeadState:
        """An independent copy (a rule works on one, committed if the rule is kept)."""
        return LeadState(
            self.count, self.limit, self.max_mult, set(self.companies), set(self.groups)
        )

    def full_reason(self) -> Reason:
        """Why a full lead takes no more contracts."""
        return (
            Reason.MULTIPLICATION_REACHED
            if multiplication_reached(self.count, self.max_mult)
            else Reason.SHARE_COUNT_EXCEEDED
        )

    def conflicts(self, c: ContractSnapshot) -> bool:
        """The contract's company or group holds the lead or was chosen already."""
        return already_holds(c.company_id, c.contract_group_id, self.companies, self.groups)

    def refusal(self, c: ContractSnapshot) -> Reason | None:
        """Why the share-count rule refuses the contract as one more holder (None: it may)."""
        if self.count >= self.limit:
            return self.full_reason()
        if not tolerates(c.max_share_count, self.count + 1):
            return Reason.SHARE_COUNT_EXCEEDED
        return None

    def add(self, c: ContractSnapshot) -> None:
        """The contract joins the holders: its own share count now limits the lead too."""
        self.count += 1
        self.limit = min(self.limit, c.max_share_count)
        self.companies.add(c.company_id)
        if c.contract_group_id is not None:
            self.groups.add(c.contract_group_id)


class HeapOrder:
    """Ascending order of key tuples (last element: the contract id), produced lazily.

    A rule usually needs its first few contracts only, so the keys are heapified (linear)
    rather than sorted; the untouched tail is sorted only if the explanation is read.
    With `refine` (distance mode) a key may hold a proven lower bound; when it reaches the
    top it is replaced by a tighter key (finally the exact one) and pushed back. An exact
    key on top is next in exact order, because every other key is at most that contract's
    exact key.
    """

    __slots__ = ("exact", "heap", "refine")

    def __init__(
        self,
        keys: list[Entry],
        refine: Callable[[int], tuple[Entry, bool]] | None = None,
        exact: set[int] | None = None,
    ) -> None:
        heapq.heapify(keys)
        self.heap = keys
        self.refine = refine
        self.exact = exact if exact is not None else set()

    def next_id(self) -> int | None:
        heap = self.heap
        while heap:
            cid = entry_id(heapq.heappop(heap))
            if self.refine is None or cid in self.exact:
                return cid
            tighter, is_exact = self.refine(cid)
            if is_exact:
                self.exact.add(cid)
            heapq.heappush(heap, tighter)
        return None

    def remaining(self) -> int:
        return len(self.heap)

    def tail(self, start: int, position: int, reason: Reason) -> Event:
        return RankedKeys(self.heap, start, position, reason)


class SortedOrder:
    """An order whose keys never change for a contract (QS, free trial, turnover), presorted
    once per `ContractTable` and read in place: the same interface as `HeapOrder`."""

    __slots__ = ("contracts", "pos", "seq")

    def __init__(self, seq: list[int], contracts: Sequence[ContractSnapshot]) -> None:
        self.seq = seq  # contract indices in order
        self.contracts = contracts
        self.pos = 0

    def next_id(self) -> int | None:
        if self.pos >= len(self.seq):
            return None
        idx = self.seq[self.pos]
        self.pos += 1
        return self.contracts[idx].id

    def remaining(self) -> int:
        return len(self.seq) - self.pos

    def tail(self, start: int, position: int, reason: Reason) -> Event:
        return RankedTail(self.seq[self.pos :], start, position, reason)


Order = HeapOrder | SortedOrder


def _spherical_bounds(
    pool: list[int], contracts: Sequence[ContractSnapshot], ctx: LeadContext
) -> list[float]:
    """Per contract, a proven lower bound of the geodesic km to its nearest location.

    1. Great-circle distance from the lead to every location of the pool, vectorised.
    2. The minimum per contract (infinity without locations), shrunk by the proven
       sphere/ellipsoid margin.
    """
    flat = [contracts[i].loc_rad for i in pool]
    counts = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat)) // 2
    bounds = np.full(len(pool), math.inf)
    total = int(counts.sum())
    if total:
        coords = np.fromiter(chain.from_iterable(flat), dtype=np.float64, count=2 * total)
        lat, lon = coords[0::2], coords[1::2]
        h = (
            np.sin((lat - ctx.lat_r) * 0.5) ** 2
            + ctx.cos_lat * np.cos(lat) * np.sin((lon - ctx.lon_r) * 0.5) ** 2
        )
        km = 2.0 * EARTH_MEAN_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
        has = counts > 0
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[has]
        bounds[has] = np.maximum(np.minimum.reduceat(km, starts) * SPHERE_LOW - SLACK_KM, 0.0)
    result: list[float] = bounds.tolist()
    return result


def _distance_order(
    pool: list[int],
    contracts: Sequence[ContractSnapshot],
    index_of: dict[int, int],
    ctx: LeadContext,
) -> HeapOrder:
    """Nearest first, exactly, with as few geodesics as possible.

    1. Each contract starts under a proven lower bound: the great-circle distance to its
       nearest location, shrunk by the sphere/ellipsoid margin (infinity without
       locations), computed for the whole pool at once.
    2. A bound that reaches the top of the heap is replaced by the exact geodesic (cached
       per lead). A lead without coordinates puts every contract at infinity, so the
       order is by QS, price and id.
    """
    if not ctx.has_point:
        return HeapOrder([(math.inf, contracts[i].qs_key) for i in pool])
    qs_keys = [contracts[i].qs_key for i in pool]
    keys: list[Entry] = list(zip(_spherical_bounds(pool, contracts, ctx), qs_keys, strict=True))

    def refine(cid: int) -> tuple[Entry, bool]:
        c = contracts[index_of[cid]]
        return (ctx.nearest(c), c.qs_key), True

    return HeapOrder(keys, refine)


def _order(
    mode: SelectionMode,
    pool: list[int],
    contracts: Sequence[ContractSnapshot],
    index_of: dict[int, int],
    ctx: LeadContext,
    rng: random.Random,
    presorted: Callable[[str], list[int] | None] | None = None,
) -> Order:
    # Every key ends with (-quality score, -price, id): "equally placed contracts are
    # further sorted by QS and price", then by id so the order is total.
    if presorted is not None and mode in (SelectionMode.QS, SelectionMode.FREE_TRIAL):
        seq = presorted("qs" if mode is SelectionMode.QS else "trial")
        if seq is not None:
            return SortedOrder(seq, contracts)
    if mode is SelectionMode.QS:
        return HeapOrder([contracts[i].qs_key for i in pool])
    if mode is SelectionMode.ROUND_ROBIN:
        return HeapOrder([contracts[i].rr_key for i in pool])
    if mode is SelectionMode.FREE_TRIAL:
        return HeapOrder([contracts[i].trial_key for i in pool])
    if mode is SelectionMode.RANDOM:
        # One draw per contract, in id order (the pool is): reproducible for a given seed.
        # Draws are distinct floats, so no two contracts are equally placed (ties, at odds
        # of about 1e-9 for 10,000 contracts, fall to the id).
        ids = [contracts[i].id for i in pool]
        draw = rng.random
        return HeapOrder(list(zip([draw() for _ in ids], ids, strict=True)))
    if mode is SelectionMode.DISTANCE:
        return _distance_order(pool, contracts, index_of, ctx)
    raise ValueError(f"{mode} is not an ordering mode")


def _walk(
    order: Order,
    index_of: dict[int, int],
    contracts: Sequence[ContractSnapshot],
    rule: SelectionRuleSnapshot,
    state: LeadState,
    log: list[Event],
) -> tuple[list[int], int]:
    """Take contracts in order while take, multiplication and share counts allow.

    1. Skip a contract whose company or group already has the lead (or was just chosen),
       or whose own max_share_count cannot accept one more outbound lead.
    2. Take the others until `take` is reached or the lead is full; the rest keep their
       rank with the reason that stopped the rule.
    Returns the taken indices and how many contracts the rule ranked.
    """
    taken: list[int] = []
    examined: list[int] = []
    reasons: list[Reason | None] = []
    stop: Reason | None = None
    while True:
        cid = order.next_id()
        if cid is None:
            break
        idx = index_of[cid]
        c = contracts[idx]
        examined.append(idx)
        if state.conflicts(c):
            reasons.append(Reason.COMPANY_ALREADY_SELECTED)
            continue
        refused = state.refusal(c)
        if refused is not None:
            reasons.append(refused)
            continue
        reasons.append(None)
        state.add(c)
        taken.append(idx)
        if len(taken) >= rule.take:
            stop = Reason.TAKE_REACHED
            break
        if state.count >= state.limit:
            stop = state.full_reason()
            break
    log.append(Ranked(examined, reasons, 1, rule.position))
    if stop is not None and order.remaining():
        log.append(order.tail(len(examined) + 1, rule.position, stop))
    return taken, len(examined) + order.remaining()


def _candidates(
    order: Order,
    index_of: dict[int, int],
    contracts: Sequence[ContractSnapshot],
    state: LeadState,
    size: int,
) -> tuple[list[int], list[int]]:
    """The contracts that can matter to `best_subset`, read from the ranked order lazily.

    For each final size k ≤ `size`, `_best_of_size` only ever looks at the items of E_k
    (max_share_count ≥ count + k) that survive its pruning: first of their (company,
    group) pair, among the first k of their company and of their group, and among the first
    2k(k-1)+1 such. The same pruning is replayed here in rank order, per k, and the scan
    stops once every k has its full quota, so 10,000 ranked contracts usually cost a few
    dozen steps. Any superset of those survivors gives `best_subset` the same optimum.
    Returns (the contracts scanned, in rank order; the useful ones among them).
    """
    count = state.count
    quota = {k: 2 * k * (k - 1) + 1 for k in range(1, size + 1)}
    open_sizes = set(quota)
    pairs: dict[int, set[tuple[int, int | None]]] = {k: set() for k in quota}
    per_company: dict[int, dict[int, int]] = {k: {} for k in quota}
    per_group: dict[int, dict[int, int]] = {k: {} for k in quota}
    kept = dict.fromkeys(quota, 0)
    scanned: list[int] = []
    useful: list[int] = []
    while open_sizes:
        cid = order.next_id()
        if cid is None:
            break
        idx = index_of[cid]
        scanned.append(idx)
        c = contracts[idx]
        if state.conflicts(c):
            continue
        pair = (c.company_id, c.contract_group_id)
        keep = False
        for k in range(1, min(size, sizes_tolerated(c.max_share_count, count)) + 1):
            if k not in open_sizes or pair in pairs[k]:
                continue
            pairs[k].add(pair)
            by_company = per_company[k][c.company_id] = per_company[k].get(c.company_id, 0) + 1
            by_group = 0
            if c.contract_group_id is not None:
                groups = per_group[k]
                by_group = groups[c.contract_group_id] = groups.get(c.contract_group_id, 0) + 1
            if by_company <= k and by_group <= k:
                keep = True
                kept[k] += 1
                if kept[k] == quota[k]:
                    open_sizes.discard(k)
        if keep:
            useful.append(idx)
    return scanned, useful


def _optimise(
    mode: SelectionMode,
    pool: list[int],
    index_of: dict[int, int],
    contracts: Sequence[ContractSnapshot],
    rule: SelectionRuleSnapshot,
    state: LeadState,
    log: list[Event],
    presorted: Callable[[str], list[int] | None] | None = None,
) -> tuple[list[int], int]:
    """Turnover / lead count: the exact best subset, then the explanation of the rest.

    1. Rank by the mode's weight (price; for lead count every contract weighs one first,
       so the same order), then QS, price, id — float keys order money amounts exactly (a
       price has far fewer than 15 significant digits); sums stay Decimal.
    2. Read only the contracts that can matter (`_candidates`) and solve exactly
       (`best_subset`).
    3. Explain: the chosen first, then the other examined contracts with why each could not
       join, then the unexamined tail (ranked only if the explanation is read).
    """
    seq = presorted("turnover") if presorted is not None else None
    order: Order = (
        SortedOrder(seq, contracts)
        if seq is not None
        else HeapOrder([contracts[i].turnover_key for i in pool])
    )
    size = max(0, min(rule.take, state.limit - state.count))
    scanned, useful = _candidates(order, index_of, contracts, state, size)
    one = Decimal(1)
    items = []
    for position, i in enumerate(useful):
        c = contracts[i]
        qs = Decimal(c.quality_score)
        weight = (c.price, qs) if mode is SelectionMode.TURNOVER else (one, c.price, qs)
        items.append(
            SubsetItem(i, weight, c.max_share_count, c.company_id, c.contract_group_id, position)
        )
    chosen = best_subset(
        items, outbound_count=state.count, limit=state.limit, take=rule.take, presorted=True
    )
    taken_set = {it.ref for it in chosen}
    taken = [i for i in useful if i in taken_set]
    blocked = {i for i in scanned if state.conflicts(contracts[i])}
    for idx in taken:
        state.add(contracts[idx])
    others = [i for i in scanned if i not in taken_set]
    reasons: list[Reason | None] = [None] * len(taken)
    for idx in others:
        # Why this one could not simply join the chosen set (it would add weight if it could).
        c = contracts[idx]
        if idx in blocked or state.conflicts(c):
            reasons.append(Reason.COMPANY_ALREADY_SELECTED)
        elif len(taken) >= rule.take:
            reasons.append(Reason.TAKE_REACHED)
        elif state.count >= state.limit:
            reasons.append(state.full_reason())
        elif not tolerates(c.max_share_count, state.count + 1):
            reasons.append(Reason.SHARE_COUNT_EXCEEDED)
        else:
            reasons.append(Reason.NOT_SELECTED_RANK)
    log.append(Ranked(taken + others, reasons, 1, rule.position))
    if order.remaining():
        if len(taken) >= rule.take:
            tail = Reason.TAKE_REACHED
        elif state.count >= state.limit:
            tail = state.full_reason()
        else:
            tail = Reason.NOT_SELECTED_RANK
        log.append(order.tail(len(scanned) + 1, rule.position, tail))
    return taken, len(scanned) + order.remaining()


def select_contracts(
    lead: InboundLeadSnapshot,
    contracts: Sequence[ContractSnapshot] | ContractTable,
    workflow: WorkflowSnapshot,
    now: datetime,
    rng: random.Random,
) -> SelectionDecision:
    """Choose the contracts that receive a lead by the workflow's contract selection rules.

    1. Eligibility of every contract (a reason code for each ineligible one).
    2. Rules in position order; each sees the eligible contracts not chosen yet and takes at
       most `take` of them in its mode's order (qs, random, round_robin, distance,
       free_trial) or as the exact best subset (turnover, lead_count). Throughout, the lead's
       final count of (non-cherry-picked) outbound leads stays within the workflow's
       max_multiplication and the max_share_count of every contract holding it, existing
       or newly chosen, and no company or contract group gets it twice.
    3. A rule whose selection turns over less than its min_turnover is skipped; its
       contracts stay available to the next rules.
    4. If the whole selection misses the workflow's min_contracts / min_turnover, nothing is
       chosen and the decision says why.
    CONTRACTS may be a `ContractTable` (compiled once for many leads): the same decision,
    with eligibility computed for all contracts at once.
    """
    return _select(screen(lead, contracts, now), workflow, rng)


def _select(
    screened: Screened, workflow: WorkflowSnapshot, rng: random.Random
) -> SelectionDecision:
    """Steps 2-4 of `select_contracts`, on screened contracts."""
    ctx, contracts, base, eligible, ineligible, index_of, table, mask = screened
    lead = ctx.lead
    state = LeadState.initial(lead, workflow)
    rules = sorted(workflow.rules, key=lambda r: r.position)
    log: list[Event] = [Relabel(eligible, Reason.NO_RULE)]
    outcomes: list[RuleOutcome] = []
    chosen: list[tuple[int, SelectionRuleSnapshot]] = []
    chosen_set: set[int] = set()

    for rule in rules:
        pool = [i for i in eligible if i not in chosen_set] if chosen_set else eligible
        if not pool:
            outcomes.append(_outcome(rule, 0, (), ZERO, reason=Reason.NO_CANDIDATES))
            continue
        if state.count >= state.limit:
            full = state.full_reason()
            log.append(Relabel(pool, full))
            outcomes.append(_outcome(rule, 0, (), ZERO, reason=full))
            continue
        trial = state.copy()
        presorted = (
            _presorted(table, mask, chosen_set) if table is not None and mask is not None else None
        )
        if rule.take <= 0:
            log.append(Relabel(pool, Reason.TAKE_REACHED))
            taken: list[int] = []
            considered = 0
        elif rule.mode in (SelectionMode.TURNOVER, SelectionMode.LEAD_COUNT):
            taken, considered = _optimise(
                rule.mode, pool, index_of, contracts, rule, trial, log, presorted
            )
        else:
            order = _order(rule.mode, pool, contracts, index_of, ctx, rng, presorted)
            taken, considered = _walk(order, index_of, contracts, rule, trial, log)
        turnover = sum((contracts[i].price for i in taken), ZERO)
        ids = tuple(contracts[i].id for i in taken)
        if taken and rule.min_turnover is not None and turnover < rule.min_turnover:
            log.append(Relabel(taken, Reason.RULE_SKIPPED_MIN_TURNOVER))
            outcomes.append(
                _outcome(
                    rule, considered, ids, turnover, Reason.RULE_SKIPPED_MIN_TURNOVER, skipped=True
                )
            )
            continue
        state = trial
        chosen.extend((idx, rule) for idx in taken)
        chosen_set.update(taken)
        outcomes.append(
            _outcome(rule, considered, ids, turnover, None if taken else Reason.NOTHING_SELECTED)
        )

    turnover = sum((contracts[i].price for i, _ in chosen), ZERO)
    reason: Reason | None = None
    if lead.campaign is None:
        reason = Reason.NO_CAMPAIGN
    elif not chosen:
        if lead.outbound_count >= lead_limit(lead, workflow):
            reason = LeadState.initial(lead, workflow).full_reason()
        elif not eligible:
            reason = Reason.NO_ELIGIBLE_CONTRACTS
        elif not rules:
            reason = Reason.NO_SELECTION_RULES
        else:
            reason = Reason.NOTHING_SELECTED
    elif len(chosen) < workflow.min_contracts:
        reason = Reason.MIN_CONTRACTS_NOT_REACHED
    elif workflow.min_turnover is not None and turnover < workflow.min_turnover:
        reason = Reason.MIN_TURNOVER_NOT_REACHED
    if reason is not None and chosen:
        log.append(Relabel([idx for idx, _ in chosen], Reason.TOTAL_MINIMUMS_NOT_REACHED))
        chosen, turnover = [], ZERO

    return build_decision(
        lead,
        contracts,
        ctx,
        base,
        log,
        eligible,
        ineligible,
        chosen,
        outcomes,
        turnover,
        reason,
        ids=table.ids if table is not None else None,
    )


def _presorted(
    table: ContractTable, mask: np.ndarray, chosen: set[int]
) -> Callable[[str], list[int] | None]:
    """The table's static orders restricted to this rule's pool (eligible, not chosen)."""

    def read(key: str) -> list[int] | None:
        pool = mask
        if chosen:
            pool = mask.copy()
            pool[list(chosen)] = False
        order = table.orders[key]
        seq: list[int] = order[pool[order]].tolist()
        return seq

    return read


def _outcome(
    rule: SelectionRuleSnapshot,
    considered: int,
    ids: tuple[int, ...],
    turnover: Decimal,
    reason: Reason | None,
    *,
    skipped: bool = False,
) -> RuleOutcome:
    return RuleOutcome(
        rule.position, rule.mode, rule.take, considered, ids, turnover, skipped, reason
    )


def build_decision(
    lead: InboundLeadSnapshot,
    contracts: tuple[ContractSnapshot, ...],
    ctx: LeadContext,
    base: Sequence[Reason | None] | np.ndarray,
    log: list[Event],
    eligible: list[int],
    ineligible: list[int],
    chosen: Sequence[tuple[int, SelectionRuleSnapshot | None]],
    outcomes: list[RuleOutcome],
    turnover: Decimal,
    reason: Reason | None,
    notes: dict[int, Reason] | None = None,
    ids: np.ndarray | None = None,
) -> SelectionDecision:
    # The rank a chosen contract had in the rule that chose it: the last Ranked entry.
    chosen_rank: dict[int, int] = {}
    wanted = {idx for idx, _ in chosen}
    for event in log:
        if isinstance(event, Ranked):
            for offset, idx in enumerate(event.indices, event.start):
                if idx in wanted:
                    chosen_rank[idx] = offset
    picked = tuple(
        ChosenContract(
            contracts[idx].id,
            contracts[idx].company_id,
            contracts[idx].price,
            rule.position if rule is not None else None,
            rule.mode if rule is not None else None,
            chosen_rank.get(idx, 0),
        )
        for idx, rule in chosen
    )
    explanation = Explanation(
        contracts=contracts,
        base=base,
        log=tuple(log),
        chosen=tuple(idx for idx, _ in chosen),
        eligible=eligible,
        ineligible=ineligible,
        distances=dict(ctx.exact),
        notes=notes or {},
        ids=ids,
    )
    return SelectionDecision(
        lead_id=lead.id,
        chosen=picked,
        turnover=turnover,
        reason=reason,
        rules=tuple(outcomes),
        outbound_count_before=lead.outbound_count,
        outbound_count_after=lead.outbound_count + len(picked),
        explanation=explanation,
    )
