"""The batch view of waiting leads and contracts, allocations, the greedy arrival-order
baseline and an exact feasibility check: what `optimizer.optimise_batch` reads and returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from distribution.engine.marketplace.eligibility import already_holds, eligible_contracts
from distribution.engine.marketplace.shares import NO_LIMIT, outbound_limit, tolerates
from distribution.engine.marketplace.subsets import SubsetItem, best_subset
from distribution.engine.marketplace.types import (
    ZERO,
    ContractSnapshot,
    InboundLeadSnapshot,
    WorkflowSnapshot,
)

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchContract:
    """A contract's remaining capacity for this batch (None: no cap of that kind)."""

    id: int
    company_id: int
    max_share_count: int
    remaining_count: int | None = None
    remaining_budget: Decimal | None = None
    contract_group_id: int | None = None
    quality_score: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchOffer:
    """An eligible contract for a lead, at the price the contract pays for it."""

    contract_id: int
    price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchLead:
    """A waiting lead with its eligible contracts and current outbound situation."""

    id: int
    arrival: datetime
    offers: tuple[BatchOffer, ...]
    max_multiplication: int | None
    outbound_count: int = 0
    holder_max_share_counts: tuple[int, ...] = ()
    received_company_ids: frozenset[int] = frozenset()
    received_group_ids: frozenset[int] = frozenset()
    min_contracts: int = 0
    min_turnover: Decimal | None = None

    @property
    def limit(self) -> int:
        """The most outbound leads it may end with (multiplication, holders' share counts)."""
        return outbound_limit(self.max_multiplication, self.holder_max_share_counts)


def batch_contract(contract: ContractSnapshot) -> BatchContract:
    """The batch view of a contract: what its count and budget caps still allow."""
    return BatchContract(
        id=contract.id,
        company_id=contract.company_id,
        max_share_count=contract.max_share_count,
        remaining_count=contract.remaining_count(),
        remaining_budget=contract.remaining_budget(),
        contract_group_id=contract.contract_group_id,
        quality_score=contract.quality_score,
    )


def batch_lead(
    lead: InboundLeadSnapshot,
    contracts: Sequence[ContractSnapshot],
    workflow: WorkflowSnapshot,
    now: datetime,
) -> BatchLead:
    """The batch view of a lead: its eligible contracts (marketplace eligibility) as offers."""
    return BatchLead(
        id=lead.id,
        arrival=lead.created_at,
        offers=tuple(BatchOffer(c.id, c.price) for c in eligible_contracts(lead, contracts, now)),
        max_multiplication=workflow.max_multiplication,
        outbound_count=lead.outbound_count,
        holder_max_share_counts=lead.holder_max_share_counts,
        received_company_ids=lead.received_company_ids,
        received_group_ids=lead.received_group_ids,
        min_contracts=workflow.min_contracts,
        min_turnover=workflow.min_turnover,
    )


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True, order=True)
class Assignment:
    """One outbound lead to create: `lead_id` sold to `contract_id` at `price`."""

    lead_id: int
    contract_id: int
    price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchAllocation:
    """The allocation of a batch, with how it was obtained and how good it provably is.

    `status`: "optimal" (proven within `mip_rel_gap` of `upper_bound`), "feasible" (a gap
    remains, see `gap`), "time_limit" (a gap remains and the MILP stopped at its time
    limit), "empty" (no lead has a feasible selection), "greedy" (from
    `greedy_in_arrival_order`, which proves nothing). `method` says which candidate won:
    "column_generation_milp", "lp_rounding" or "greedy". `upper_bound` is a proven bound
    on the best turnover (inf if no master LP could be solved in time); `gap` = 1 -
    objective / upper_bound.
    """

    assignments: tuple[Assignment, ...]
    objective: Decimal
    status: str
    method: str
    upper_bound: float | None = None
    gap: float | None = None
    time_limit: float | None = None
    mip_rel_gap: float | None = None
    rounds: int = 0
    n_columns: int = 0
    n_rows: int = 0
    n_edges: int = 0
    exact_model: bool = False
    solver_message: str = ""
    by_lead: dict[int, tuple[Assignment, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        grouped: dict[int, list[Assignment]] = {}
        for a in self.assignments:
            grouped.setdefault(a.lead_id, []).append(a)
        self.by_lead.update({lead: tuple(items) for lead, items in grouped.items()})


def greedy_in_arrival_order(
    leads: Sequence[BatchLead], contracts: Sequence[BatchContract]
) -> BatchAllocation:
    """Per lead in arrival order, the best-turnover selection, decrementing caps as it goes.

    1. Leads by (arrival, id).
    2. For each: its offers whose contract still has count and budget left, and the exact
       best-turnover subset (`best_subset`: share counts, multiplication, one per company
       and group); nothing if that misses the lead's minimums.
    3. Decrement the chosen contracts' remaining count and budget.
    """
    index = {c.id: j for j, c in enumerate(contracts)}
    count_left: dict[int, int | None] = {c.id: c.remaining_count for c in contracts}
    budget_left: dict[int, Decimal | None] = {c.id: c.remaining_budget for c in contracts}
    out: list[Assignment] = []
    for lead in sorted(leads, key=lambda item: (item.arrival, item.id)):
        items: list[SubsetItem] = []
        seen: set[int] = set()
        for position, offer in enumerate(lead.offers):
            j = index.get(offer.contract_id)
            if j is None:
                raise ValueError(f"lead {lead.id} offers unknown contract {offer.contract_id}")
            c = contracts[j]
            if c.id in seen:
                continue
            seen.add(c.id)
            left = count_left[c.id]
            budget = budget_left[c.id]
            if (left is not None and left <= 0) or (budget is not None and offer.price > budget):
                continue
            if already_holds(
                c.company_id,
                c.contract_group_id,
                lead.received_company_ids,
                lead.received_group_ids,
            ):
                continue
            items.append(
                SubsetItem(
                    j,
                    (offer.price, Decimal(c.quality_score)),
                    c.max_share_count,
                    c.company_id,
                    c.contract_group_id,
                    position,
                )
            )
        chosen = best_subset(
            items, outbound_count=lead.outbound_count, limit=lead.limit, take=NO_LIMIT
        )
        turnover = sum((it.weight[0] for it in chosen), ZERO)
        if not chosen or len(chosen) < lead.min_contracts:
            continue
        if lead.min_turnover is not None and turnover < lead.min_turnover:
            continue
        for it in chosen:
            c = contracts[it.ref]
            left = count_left[c.id]
            if left is not None:
                count_left[c.id] = left - 1
            budget = budget_left[c.id]
            if budget is not None:
                budget_left[c.id] = budget - it.weight[0]
            out.append(Assignment(lead.id, c.id, it.weight[0]))
    assignments = tuple(sorted(out))
    return BatchAllocation(
        assignments=assignments,
        objective=sum((a.price for a in assignments), ZERO),
        status="greedy",
        method="greedy",
    )


def allocation_violations(
    leads: Sequence[BatchLead],
    contracts: Sequence[BatchContract],
    assignments: Sequence[Assignment],
) -> list[str]:
    """Every constraint the allocation breaks, in words (empty: it is feasible)."""
    problems: list[str] = []
    by_id = {c.id: c for c in contracts}
    lead_by_id = {lead.id: lead for lead in leads}
    per_lead: dict[int, list[Assignment]] = {}
    per_contract: dict[int, list[Assignment]] = {}
    pairs: set[tuple[int, int]] = set()
    for a in assignments:
        lead = lead_by_id.get(a.lead_id)
        if lead is None or a.contract_id not in by_id:
            problems.append(f"unknown lead or contract in {a}")
            continue
        if (a.lead_id, a.contract_id) in pairs:
            problems.append(f"lead {a.lead_id} sold twice to contract {a.contract_id}")
        pairs.add((a.lead_id, a.contract_id))
        prices = {o.price for o in lead.offers if o.contract_id == a.contract_id}
        if a.price not in prices:
            problems.append(f"lead {a.lead_id}: contract {a.contract_id} made no such offer")
        per_lead.setdefault(a.lead_id, []).append(a)
        per_contract.setdefault(a.contract_id, []).append(a)
    for lead_id, sold in per_lead.items():
        lead = lead_by_id[lead_id]
        chosen = [by_id[a.contract_id] for a in sold]
        companies = [c.company_id for c in chosen]
        groups = [c.contract_group_id for c in chosen if c.contract_group_id is not None]
        if len(set(companies)) < len(companies) or set(companies) & lead.received_company_ids:
            problems.append(f"lead {lead_id}: a company gets it twice")
        if len(set(groups)) < len(groups) or set(groups) & lead.received_group_ids:
            problems.append(f"lead {lead_id}: a contract group gets it twice")
        final = lead.outbound_count + len(sold)
        if not tolerates(lead.limit, final):
            problems.append(f"lead {lead_id}: {final} outbound exceeds multiplication/holders")
        if not all(tolerates(c.max_share_count, final) for c in chosen):
            problems.append(f"lead {lead_id}: {final} outbound exceeds a new max_share_count")
        turnover = sum((a.price for a in sold), ZERO)
        if len(sold) < lead.min_contracts or (
            lead.min_turnover is not None and turnover < lead.min_turnover
        ):
            problems.append(f"lead {lead_id}: below the total selection minimums")
    for contract_id, sold in per_contract.items():
        c = by_id[contract_id]
        if c.remaining_count is not None and len(sold) > c.remaining_count:
            problems.append(f"contract {contract_id}: count cap exceeded")
        spent = sum((a.price for a in sold), ZERO)
        if c.remaining_budget is not None and spent > c.remaining_budget:
            problems.append(f"contract {contract_id}: budget exceeded")
    return problems
