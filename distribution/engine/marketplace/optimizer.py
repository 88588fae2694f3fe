"""Batch-optimal marketplace allocation: many waiting leads and their contracts at once.

When many leads wait (in auto-distribution windows) and contract caps bind, choosing per
lead in arrival order leaves turnover on the table. `optimise_batch` allocates them all at
once to maximise turnover — a max-weight b-matching between leads and contracts with side
constraints — under the marketplace's rules:

* per lead: at most one contract per company and per contract group (none already holding
  it); after the sale the lead's count of (non-cherry-picked) outbound leads is within its
  workflow's max_multiplication and the max_share_count of every contract holding it,
  existing or new; the workflow's total minimums (contracts, turnover) hold if it gets any;
* per contract: its remaining count cap and remaining budget.

Model: the Dantzig–Wolfe (pattern) formulation. A column is one feasible selection for one
lead (a "pattern"); rows are one "at most one pattern" row per lead plus the contracts'
count and budget rows. Every per-lead rule (share counts, multiplication, companies,
groups, minimums) lives inside the patterns, so the LP relaxation is as strong as the
convex hull of each lead's choices, and the model has a few thousand rows however many
leads there are. The compact alternative (per-edge binaries with per-lead level binaries
for the share counts) is the same problem, but its LP relaxation is weak and, tightened to
the hull with per-level copies, too large for HiGHS at 5,000 leads × 300 contracts.

1. In small batches, leads with few feasible selections get all of them as columns (then
   the model is exact for them); the greedy allocation's selections are columns too.
2. Column generation: solve the master LP (HiGHS), price every other lead exactly with
   the duals (`best_subset`, the same exact solver that Turnover mode uses), add the
   selections with positive reduced profit; repeat until none is left or the bound is
   tight. Each round also yields a Lagrangian upper bound valid for any duals.
3. Solve the master over all generated columns as a MILP (`scipy.optimize.milp`, HiGHS,
   scipy.sparse rows) within `time_limit` and `mip_rel_gap`.
4. Round the last master LP as well (keep the leads it decided whole, fill up the rest
   greedily) — a strong fallback when the MILP stops at its time limit.
5. Verify every candidate exactly (Decimal) and return the best of the MILP's, the
   rounding's and the greedy arrival-order allocation, with the gap to the proven bound.

A MILP over generated columns is optimal for those columns only (price-and-branch), so a
result is called "optimal" only when its gap to the proven bound is within `mip_rel_gap`
— which HiGHS proves by itself when every selection was enumerated (`exact_model`).

Pure: no Django, no clock, no I/O (HiGHS keeps its own time limit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csc_array

from distribution.engine.marketplace.batch import (
    Assignment,
    BatchAllocation,
    BatchContract,
    BatchLead,
    allocation_violations,
    greedy_in_arrival_order,
)
from distribution.engine.marketplace.eligibility import already_holds
from distribution.engine.marketplace.shares import NO_LIMIT, tolerates
from distribution.engine.marketplace.subsets import SubsetItem, best_subset
from distribution.engine.marketplace.types import ZERO

__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "DEFAULT_MIP_REL_GAP",
    "DEFAULT_TIME_LIMIT",
    "lp_upper_bound",
    "optimise_batch",
]

DEFAULT_TIME_LIMIT = 30.0
DEFAULT_MIP_REL_GAP = 1e-3
DEFAULT_MAX_ROUNDS = 40
# In a batch of at most _ENUMERATE_EDGES usable pairs, a lead with at most _ENUMERATE_UP_TO
# feasible selections gets them all as columns (small batches are then solved exactly);
# in larger batches column generation alone keeps the master LP small.
_ENUMERATE_UP_TO = 64
_ENUMERATE_EDGES = 5_000
# Search nodes allowed when pricing a lead under a min turnover (exact below this).
_FLOOR_SEARCH_NODES = 20_000


# --------------------------------------------------------------------------- the problem


@dataclass(frozen=True, slots=True)
class _Edge:
    lead: int  # index into leads
    contract: int  # index into contracts
    price: Decimal


class _Problem:
    """Usable edges per lead and the contracts' coupling rows.

    An edge is dropped when it can never be part of a feasible allocation: unknown or
    repeated contract, company or group already holding the lead, the contract's own
    max_share_count too small for one more outbound lead, no count or budget left for it,
    a lead with no room left or whose min_contracts cannot be met. A contract gets a count
    (budget) row only if its edges could exceed its remaining count (budget).
    """

    def __init__(self, leads: Sequence[BatchLead], contracts: Sequence[BatchContract]) -> None:
        self.leads = leads
        self.contracts = contracts
        index = {c.id: j for j, c in enumerate(contracts)}
        if len(index) != len(contracts):
            raise ValueError("contract ids must be unique")
        self.edges: list[_Edge] = []
        self.per_lead: list[list[int]] = []
        for i, lead in enumerate(leads):
            own: list[int] = []
            self.per_lead.append(own)
            if lead.limit - lead.outbound_count <= 0:
                continue
            seen: set[int] = set()
            found: list[_Edge] = []
            for offer in lead.offers:
                j = index.get(offer.contract_id)
                if j is None:
                    raise ValueError(f"lead {lead.id} offers unknown contract {offer.contract_id}")
                if offer.contract_id in seen:
                    continue
                seen.add(offer.contract_id)
                c = contracts[j]
                if _usable(lead, c, offer.price):
                    found.append(_Edge(i, j, offer.price))
            if lead.min_contracts > min(lead.limit - lead.outbound_count, len(found)):
                continue
            for edge in found:
                own.append(len(self.edges))
                self.edges.append(edge)
        n_leads = len(leads)
        reach: dict[int, set[int]] = {}
        best_price: dict[int, dict[int, Decimal]] = {}
        for edge in self.edges:
            reach.setdefault(edge.contract, set()).add(edge.lead)
            prices = best_price.setdefault(edge.contract, {})
            prices[edge.lead] = max(prices.get(edge.lead, ZERO), edge.price)
        self.count_row: dict[int, int] = {}
        self.budget_row: dict[int, int] = {}
        rhs: list[float] = [1.0] * n_leads
        for j in sorted(reach):
            c = contracts[j]
            if c.remaining_count is not None and c.remaining_count < len(reach[j]):
                self.count_row[j] = len(rhs)
                rhs.append(float(c.remaining_count))
        for j in sorted(reach):
            c = contracts[j]
            budget = c.remaining_budget
            if budget is not None and sum(best_price[j].values(), ZERO) > budget:
                self.budget_row[j] = len(rhs)
                rhs.append(float(budget))
        self.rhs = np.array(rhs)


def _usable(lead: BatchLead, c: BatchContract, price: Decimal) -> bool:
    if already_holds(
        c.company_id, c.contract_group_id, lead.received_company_ids, lead.received_group_ids
    ):
        return False
    if not tolerates(c.max_share_count, lead.outbound_count + 1):
        return False
    if c.remaining_count is not None and c.remaining_count <= 0:
        return False
    return c.remaining_budget is None or price <= c.remaining_budget


class _Columns:
    """The generated patterns (one lead's selection each) and their sparse entries."""

    def __init__(self, problem: _Problem) -> None:
        self.problem = problem
        self.lead: list[int] = []
        self.pattern: list[tuple[int, ...]] = []
        self.profit: list[float] = []
        self.rows: list[list[int]] = []
        self.vals: list[list[float]] = []
        self.known: set[tuple[int, tuple[int, ...]]] = set()

    def add(self, lead: int, pattern: Sequence[int]) -> bool:
        key = (lead, tuple(sorted(pattern)))
        if not key[1] or key in self.known:
            return False
        self.known.add(key)
        p = self.problem
        rows, vals = [lead], [1.0]
        for e in key[1]:
            edge = p.edges[e]
            count_row = p.count_row.get(edge.contract)
            if count_row is not None:
                rows.append(count_row)
                vals.append(1.0)
            budget_row = p.budget_row.get(edge.contract)
            if budget_row is not None:
                rows.append(budget_row)
                vals.append(float(edge.price))
        self.lead.append(lead)
        self.pattern.append(key[1])
        self.profit.append(float(sum((p.edges[e].price for e in key[1]), ZERO)))
        self.rows.append(rows)
        self.vals.append(vals)
        return True

    def matrix(self) -> csc_array:
        indptr = np.zeros(len(self.rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in self.rows], out=indptr[1:])
        flat_rows = np.fromiter((r for rows in self.rows for r in rows), dtype=np.int64)
        flat_vals = np.fromiter((v for vals in self.vals for v in vals), dtype=np.float64)
        return csc_array(
            (flat_vals, flat_rows, indptr), shape=(len(self.problem.rhs), len(self.rows))
        )


# --------------------------------------------------------------------------- patterns


def _may_join(
    c: BatchContract, count_after: int, limit: int, companies: set[int], groups: set[int]
) -> bool:
    """In a depth-first selection: the contract keeps the lead within the share counts
    (`limit`: of the contracts chosen so far) and adds no company or group twice."""
    return tolerates(min(limit, c.max_share_count), count_after) and not already_holds(
        c.company_id, c.contract_group_id, companies, groups
    )


def _hold(c: BatchContract, companies: set[int], groups: set[int]) -> None:
    """The contract joins a depth-first selection: its company and group are taken."""
    companies.add(c.company_id)
    if c.contract_group_id is not None:
        groups.add(c.contract_group_id)


def _release(c: BatchContract, companies: set[int], groups: set[int]) -> None:
    """Backtrack `_hold`."""
    companies.discard(c.company_id)
    if c.contract_group_id is not None:
        groups.discard(c.contract_group_id)


def _few_selections(problem: _Problem, i: int) -> bool:
    # Cheap pre-check before enumerating: subsets of up to three edges, ignoring conflicts.
    # Only a shortcut: a lead left out is priced by column generation instead.
    n = len(problem.per_lead[i])
    lead = problem.leads[i]
    room = min(3, lead.limit - lead.outbound_count)
    estimate = sum(math.comb(n, k) for k in range(1, room + 1))
    return estimate <= 8 * _ENUMERATE_UP_TO


def _enumerate(problem: _Problem, i: int, cap: int) -> list[tuple[int, ...]] | None:
    """Every feasible non-empty selection of lead i, or None if there are more than cap.

    Depth-first over the lead's edges: an edge may join while its company and group are
    new and the final count stays within the lead's limit and every chosen contract's
    max_share_count; a selection counts once it meets the lead's minimums.
    """
    lead = problem.leads[i]
    own = problem.per_lead[i]
    contracts, edges = problem.contracts, problem.edges
    out: list[tuple[int, ...]] = []
    chosen: list[int] = []
    floor = lead.min_turnover

    def walk(start: int, limit: int, companies: set[int], groups: set[int], total: Decimal) -> bool:
        if chosen and len(chosen) >= lead.min_contracts and (floor is None or total >= floor):
            out.append(tuple(chosen))
            if len(out) > cap:
                return False
        for pos in range(start, len(own)):
            e = own[pos]
            c = contracts[edges[e].contract]
            if not _may_join(c, lead.outbound_count + len(chosen) + 1, limit, companies, groups):
                continue
            chosen.append(e)
            _hold(c, companies, groups)
            ok = walk(
                pos + 1,
                min(limit, c.max_share_count),
                companies,
                groups,
                total + edges[e].price,
            )
            chosen.pop()
            _release(c, companies, groups)
            if not ok:
                return False
        return True

    if not walk(0, lead.limit, set(), set(), ZERO):
        return None
    return out


def _price(
    problem: _Problem, i: int, weight: dict[int, float], allowed: Sequence[int] | None = None
) -> tuple[tuple[int, ...], float, float]:
    """The lead's selection of highest weight: (edges, its value, an upper bound).

    Exact via `best_subset` (share counts, multiplication, companies, groups, min
    contracts) over the lead's edges (or `allowed`). A min turnover is not part of
    `best_subset`: when its answer misses it, a bounded depth-first search finds the best
    selection that meets it; the bound returned is that value if the search was complete,
    else the value without the min turnover (valid whatever the search found).
    """
    lead = problem.leads[i]
    own = problem.per_lead[i] if allowed is None else allowed
    contracts, edges = problem.contracts, problem.edges
    items: list[SubsetItem] = []
    for position, e in enumerate(own):
        c = contracts[edges[e].contract]
        items.append(
            SubsetItem(
                e,
                (Decimal(weight[e]),),
                c.max_share_count,
                c.company_id,
                c.contract_group_id,
                position,
            )
        )
    best = best_subset(
        items,
        outbound_count=lead.outbound_count,
        limit=lead.limit,
        take=NO_LIMIT,
        min_size=lead.min_contracts,
    )
    value = sum((weight[it.ref] for it in best), 0.0)
    if not best:
        return (), 0.0, 0.0
    floor = lead.min_turnover
    if floor is None or sum((edges[it.ref].price for it in best), ZERO) >= floor:
        return tuple(it.ref for it in best), value, value
    found, found_value, complete = _floor_search(problem, i, weight, own)
    return found, found_value, (max(0.0, found_value) if complete else value)


def _floor_search(
    problem: _Problem, i: int, weight: dict[int, float], allowed: Sequence[int]
) -> tuple[tuple[int, ...], float, bool]:
    """Best selection of lead i by `weight` that meets its min turnover (bounded DFS).

    1. Edges by weight, best first; a branch is cut when even the best remaining weights
       cannot beat the best found, or the highest remaining prices cannot reach the floor.
    2. Stops after `_FLOOR_SEARCH_NODES` nodes with the best found so far (always feasible).
    Returns the selection (empty: none), its value and whether the search was complete.
    """
    lead = problem.leads[i]
    contracts, edges = problem.contracts, problem.edges
    own = sorted(allowed, key=lambda e: -weight[e])
    floor = lead.min_turnover if lead.min_turnover is not None else ZERO
    room = lead.limit - lead.outbound_count
    best: tuple[tuple[int, ...], float] = ((), -math.inf)
    chosen: list[int] = []
    nodes = 0
    prices = sorted((edges[e].price for e in own), reverse=True)

    def walk(start: int, limit: int, used: set[int], groups: set[int], total: Decimal) -> None:
        nonlocal best, nodes
        nodes += 1
        value = sum((weight[e] for e in chosen), 0.0)
        if chosen and len(chosen) >= lead.min_contracts and total >= floor and value > best[1]:
            best = (tuple(chosen), value)
        slots = min(room, limit - lead.outbound_count) - len(chosen)
        if nodes > _FLOOR_SEARCH_NODES or slots <= 0:
            return
        optimistic = value + sum(max(0.0, weight[e]) for e in own[start : start + slots])
        if optimistic <= best[1] or total + sum(prices[:slots], ZERO) < floor:
            return
        for pos in range(start, len(own)):
            e = own[pos]
            c = contracts[edges[e].contract]
            if not _may_join(c, lead.outbound_count + len(chosen) + 1, limit, used, groups):
                continue
            chosen.append(e)
            _hold(c, used, groups)
            walk(pos + 1, min(limit, c.max_share_count), used, groups, total + edges[e].price)
            chosen.pop()
            _release(c, used, groups)

    walk(0, lead.limit, set(), set(), ZERO)
    complete = nodes <= _FLOOR_SEARCH_NODES
    if best[1] == -math.inf:
        return (), 0.0, complete
    return best[0], best[1], complete


# --------------------------------------------------------------------------- generation


class _Generation:
    """Steps 1-2 of the module docstring: columns and the best proven upper bound."""

    def __init__(
        self,
        problem: _Problem,
        seed: Sequence[Assignment],
        *,
        max_rounds: int,
        time_limit: float,
        tolerance: float,
    ) -> None:
        self.problem = problem
        self.columns = _Columns(problem)
        self.upper_bound = math.inf
        self.lp_value = 0.0
        self.lp_x: np.ndarray[Any, np.dtype[np.float64]] = np.zeros(0)
        self.rounds = 0
        n_leads = len(problem.leads)
        self.enumerated = [False] * n_leads
        small = len(problem.edges) <= _ENUMERATE_EDGES
        for i in range(n_leads):
            if not problem.per_lead[i]:
                self.enumerated[i] = True
                continue
            patterns = (
                _enumerate(problem, i, _ENUMERATE_UP_TO)
                if small and _few_selections(problem, i)
                else None
            )
            if patterns is not None:
                self.enumerated[i] = True
                for pattern in patterns:
                    self.columns.add(i, pattern)
        lead_index = {lead.id: i for i, lead in enumerate(problem.leads)}
        edge_of = {
            (i, problem.contracts[problem.edges[e].contract].id): e
            for i, own in enumerate(problem.per_lead)
            for e in own
        }
        seeded: dict[int, list[int]] = {}
        for a in seed:
            i = lead_index[a.lead_id]
            seeded.setdefault(i, []).append(edge_of[(i, a.contract_id)])
        for i, selection in seeded.items():
            self.columns.add(i, selection)
        self.exact_model = all(self.enumerated)
        self._generate(max_rounds, time_limit, tolerance)

    def _generate(self, max_rounds: int, time_limit: float, tolerance: float) -> None:
        problem, columns = self.problem, self.columns
        n_leads = len(problem.leads)
        to_price = [i for i in range(n_leads) if not self.enumerated[i]]
        while True:
            duals = self._master_lp(time_limit)
            if duals is None:
                return  # HiGHS gave up (time limit): keep the columns and bound found so far
            lead_dual = duals[:n_leads]
            pi = {j: duals[r] for j, r in problem.count_row.items()}
            rho = {j: duals[r] for j, r in problem.budget_row.items()}
            weight = {
                e: float(edge.price) * (1.0 - rho.get(edge.contract, 0.0))
                - pi.get(edge.contract, 0.0)
                for e, edge in enumerate(problem.edges)
            }
            bound = sum(pi[j] * problem.rhs[r] for j, r in problem.count_row.items())
            bound += sum(rho[j] * problem.rhs[r] for j, r in problem.budget_row.items())
            best_enumerated = [0.0] * n_leads
            for col, i in enumerate(columns.lead):
                if self.enumerated[i]:
                    value = sum(weight[e] for e in columns.pattern[col])
                    best_enumerated[i] = max(best_enumerated[i], value)
            bound += sum(best_enumerated)
            added = 0
            for i in to_price:
                pattern, value, relaxed = _price(problem, i, weight)
                bound += max(0.0, relaxed)
                if pattern and value > lead_dual[i] + 1e-9 * max(1.0, abs(value)):
                    added += columns.add(i, pattern)
            self.upper_bound = min(self.upper_bound, bound)
            self.rounds += 1
            close = self.upper_bound - self.lp_value <= tolerance * max(1.0, self.upper_bound)
            if not added or close or self.rounds >= max_rounds:
                return

    def _master_lp(self, time_limit: float) -> np.ndarray[Any, np.dtype[np.float64]] | None:
        """Solve the master LP and return its duals (zero while there are no columns;
        None if HiGHS could not solve it)."""
        columns = self.columns
        if not columns.lead:
            self.lp_value = 0.0
            self.lp_x = np.zeros(0)
            return np.zeros(len(self.problem.rhs))
        matrix = columns.matrix()
        # Interior point (with crossover) copes far better than simplex with the heavy
        # degeneracy here (one price per contract across all leads); simplex is the fallback.
        for method in ("highs-ipm", "highs-ds"):
            result = linprog(
                -np.array(columns.profit),
                A_ub=matrix,
                b_ub=self.problem.rhs,
                bounds=(0.0, None),
                method=method,
                options={"time_limit": time_limit},
            )
            if result.status == 0:
                break
        if result.status != 0:
            return None
        self.lp_value = -float(result.fun)
        self.lp_x = np.asarray(result.x, dtype=np.float64)
        duals: np.ndarray[Any, np.dtype[np.float64]] = np.maximum(
            0.0, -np.asarray(result.ineqlin.marginals, dtype=np.float64)
        )
        return duals


def _round_lp(problem: _Problem, generation: _Generation) -> list[Assignment]:
    """An allocation read off the master LP: keep what it decided, fill up greedily.

    1. Every lead whose LP solution is one whole selection keeps it (most leads: the LP of
       the pattern model is nearly integral).
    2. The other leads, those the LP spread over several selections first (by LP value),
       each take their best selection among the contracts with count and budget left.
    Capacities are checked exactly (Decimal) throughout, so the result is feasible.
    """
    contracts, edges, columns = problem.contracts, problem.edges, generation.columns
    count_left = [c.remaining_count for c in contracts]
    budget_left = [c.remaining_budget for c in contracts]
    out: list[Assignment] = []

    def fits(e: int) -> bool:
        edge = edges[e]
        left, budget = count_left[edge.contract], budget_left[edge.contract]
        return (left is None or left > 0) and (budget is None or edge.price <= budget)

    def take(i: int, pattern: Sequence[int]) -> None:
        for e in pattern:
            edge = edges[e]
            left, budget = count_left[edge.contract], budget_left[edge.contract]
            if left is not None:
                count_left[edge.contract] = left - 1
            if budget is not None:
                budget_left[edge.contract] = budget - edge.price
            out.append(Assignment(problem.leads[i].id, contracts[edge.contract].id, edge.price))

    x = generation.lp_x
    mass = [0.0] * len(problem.leads)
    done: set[int] = set()
    for col in np.argsort(-x, kind="stable").tolist() if len(x) else []:
        i = columns.lead[col]
        mass[i] += float(x[col]) * columns.profit[col]
        pattern = columns.pattern[col]
        if x[col] > 1.0 - 1e-6 and i not in done and all(fits(e) for e in pattern):
            done.add(i)
            take(i, pattern)
    rest = [i for i, own in enumerate(problem.per_lead) if own and i not in done]
    rest.sort(key=lambda i: (-mass[i], problem.leads[i].arrival, problem.leads[i].id))
    for i in rest:
        allowed = [e for e in problem.per_lead[i] if fits(e)]
        weight = {e: float(edges[e].price) for e in allowed}
        pattern, value, _ = _price(problem, i, weight, allowed)
        if pattern and value > 0:
            take(i, pattern)
    return out


# --------------------------------------------------------------------------- public API


def optimise_batch(
    leads: Sequence[BatchLead],
    contracts: Sequence[BatchContract],
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    mip_rel_gap: float = DEFAULT_MIP_REL_GAP,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> BatchAllocation:
    """Allocate all waiting leads at once to maximise total turnover under every rule.

    `time_limit` (seconds) and `mip_rel_gap` go to HiGHS for the final MILP (each master
    LP is capped by the same time limit); `max_rounds` bounds column generation. Steps:
    see the module docstring.
    """
    problem = _Problem(leads, contracts)
    greedy = greedy_in_arrival_order(leads, contracts)
    generation = _Generation(
        problem,
        greedy.assignments,
        max_rounds=max_rounds,
        time_limit=time_limit,
        tolerance=mip_rel_gap / 4,
    )
    columns = generation.columns
    n = len(columns.lead)
    if n == 0:  # no lead has a feasible selection
        return BatchAllocation(
            assignments=(),
            objective=ZERO,
            status="empty",
            method="none",
            upper_bound=0.0,
            gap=0.0,
            time_limit=time_limit,
            mip_rel_gap=mip_rel_gap,
            n_rows=len(problem.rhs),
            n_edges=len(problem.edges),
            exact_model=True,
        )
    result = milp(
        -np.array(columns.profit),
        integrality=np.ones(n),
        bounds=Bounds(0.0, 1.0),
        constraints=[LinearConstraint(columns.matrix(), -np.inf, problem.rhs)],
        options={"time_limit": time_limit, "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    solved: tuple[Assignment, ...] = ()
    x = result.x
    if x is not None:
        solved = tuple(
            sorted(
                Assignment(
                    leads[problem.edges[e].lead].id,
                    contracts[problem.edges[e].contract].id,
                    problem.edges[e].price,
                )
                for col in range(n)
                if x[col] > 0.5
                for e in columns.pattern[col]
            )
        )
    rounded = tuple(sorted(_round_lp(problem, generation)))
    # Never return an infeasible allocation, whatever the numerics of the solver.
    options = [
        (method, found)
        for method, found in (
            ("column_generation_milp", solved),
            ("lp_rounding", rounded),
            ("greedy", greedy.assignments),
        )
        if not allocation_violations(leads, contracts, found)
    ]
    method, assignments = max(options, key=lambda option: sum((a.price for a in option[1]), ZERO))
    objective = sum((a.price for a in assignments), ZERO)
    bound = generation.upper_bound
    if generation.exact_model and result.status == 0 and result.mip_dual_bound is not None:
        bound = min(bound, -float(result.mip_dual_bound))
    bound = max(bound, float(objective))
    gap = 0.0 if bound <= 0 else max(0.0, 1.0 - float(objective) / bound)
    if gap <= mip_rel_gap + 1e-12:
        status = "optimal"
    elif result.status == 1:
        status = "time_limit"
    else:
        status = "feasible"
    return BatchAllocation(
        assignments=assignments,
        objective=objective,
        status=status,
        method=method,
        upper_bound=bound,
        gap=gap,
        time_limit=time_limit,
        mip_rel_gap=mip_rel_gap,
        rounds=generation.rounds,
        n_columns=n,
        n_rows=len(problem.rhs),
        n_edges=len(problem.edges),
        exact_model=generation.exact_model,
        solver_message=str(result.message),
    )


def lp_upper_bound(
    leads: Sequence[BatchLead],
    contracts: Sequence[BatchContract],
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> float:
    """The LP relaxation's bound (pattern formulation): no allocation turns over more.

    Column generation to convergence gives the LP optimum; every round's Lagrangian bound
    is valid on its own, so the value is a proven upper bound even if rounds run out.
    """
    problem = _Problem(leads, contracts)
    if not problem.edges:
        return 0.0
    seed = greedy_in_arrival_order(leads, contracts).assignments
    generation = _Generation(
        problem, seed, max_rounds=max_rounds, time_limit=time_limit, tolerance=1e-9
    )
    if math.isinf(generation.upper_bound):
        raise RuntimeError("the master LP was not solved within the time limit")
    return generation.upper_bound
