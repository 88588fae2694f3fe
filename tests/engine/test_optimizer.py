"""Batch-optimal allocation: constraints, optimality against brute force, greedy and the
LP bound."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distribution.engine.marketplace import CapLimits, CapUsage, optimizer
from distribution.engine.marketplace.batch import (
    Assignment,
    BatchContract,
    BatchLead,
    BatchOffer,
    allocation_violations,
    batch_contract,
    batch_lead,
    greedy_in_arrival_order,
)
from distribution.engine.marketplace.optimizer import (
    DEFAULT_MIP_REL_GAP,
    DEFAULT_TIME_LIMIT,
    lp_upper_bound,
    optimise_batch,
)
from tests.engine.test_marketplace import NOW, contract, lead, rule, workflow

EPS = 1e-6


def bc(cid: int, **fields: Any) -> BatchContract:
    values: dict[str, Any] = {"id": cid, "company_id": cid, "max_share_count": 5}
    values.update(fields)
    return BatchContract(**values)


def bl(lid: int, offers: dict[int, int], **fields: Any) -> BatchLead:
    values: dict[str, Any] = {
        "id": lid,
        "arrival": NOW + timedelta(minutes=lid),
        "offers": tuple(BatchOffer(cid, Decimal(price)) for cid, price in offers.items()),
        "max_multiplication": 5,
    }
    values.update(fields)
    return BatchLead(**values)


def check(
    leads: Sequence[BatchLead], contracts: Sequence[BatchContract], sold: Sequence[Assignment]
) -> None:
    """Every marketplace rule, checked independently of the optimiser's own checker."""
    by_id = {c.id: c for c in contracts}
    for the_lead in leads:
        mine = [a for a in sold if a.lead_id == the_lead.id]
        if not mine:
            continue
        offers = {o.contract_id: o.price for o in the_lead.offers}
        chosen = [by_id[a.contract_id] for a in mine]
        assert all(offers[a.contract_id] == a.price for a in mine)
        companies = [c.company_id for c in chosen]
        groups = [c.contract_group_id for c in chosen if c.contract_group_id is not None]
        assert len(set(companies)) == len(companies)
        assert not set(companies) & the_lead.received_company_ids
        assert len(set(groups)) == len(groups)
        assert not set(groups) & the_lead.received_group_ids
        final = the_lead.outbound_count + len(mine)
        limits = [c.max_share_count for c in chosen] + list(the_lead.holder_max_share_counts)
        if the_lead.max_multiplication is not None:
            limits.append(the_lead.max_multiplication)
        assert final <= min(limits)
        assert len(mine) >= the_lead.min_contracts
        turnover = sum((a.price for a in mine), Decimal(0))
        assert the_lead.min_turnover is None or turnover >= the_lead.min_turnover
    for c in contracts:
        theirs = [a for a in sold if a.contract_id == c.id]
        assert c.remaining_count is None or len(theirs) <= c.remaining_count
        spent = sum((a.price for a in theirs), Decimal(0))
        assert c.remaining_budget is None or spent <= c.remaining_budget


def brute_force(leads: Sequence[BatchLead], contracts: Sequence[BatchContract]) -> Decimal:
    """The best turnover by trying every combination of per-lead selections."""
    by_id = {c.id: c for c in contracts}
    options: list[list[tuple[Assignment, ...]]] = []
    for the_lead in leads:
        offers = list({o.contract_id: o for o in the_lead.offers}.values())
        mine: list[tuple[Assignment, ...]] = [()]
        for size in range(1, len(offers) + 1):
            for combo in itertools.combinations(offers, size):
                sold = tuple(Assignment(the_lead.id, o.contract_id, o.price) for o in combo)
                try:
                    check([the_lead], [by_id[o.contract_id] for o in combo], sold)
                except AssertionError:
                    continue
                mine.append(sold)
        options.append(mine)
    best = Decimal(0)
    for pick in itertools.product(*options):
        sold = [a for selection in pick for a in selection]
        total = sum((a.price for a in sold), Decimal(0))
        if total <= best:
            continue
        try:
            check(leads, contracts, sold)
        except AssertionError:
            continue
        best = total
    return best


# --------------------------------------------------------------------------- examples


def test_optimiser_beats_greedy_when_an_early_lead_takes_a_scarce_contract() -> None:
    contracts = [bc(1, remaining_count=1), bc(2, remaining_count=5)]
    leads = [
        bl(1, {1: 100, 2: 90}, max_multiplication=1),
        bl(2, {1: 100}, max_multiplication=1),
    ]
    greedy = greedy_in_arrival_order(leads, contracts)
    best = optimise_batch(leads, contracts)
    assert greedy.objective == Decimal(100)
    assert best.objective == Decimal(190)
    assert set(best.assignments) == {Assignment(1, 2, Decimal(90)), Assignment(2, 1, Decimal(100))}
    assert best.status == "optimal" and best.method == "column_generation_milp"
    assert best.by_lead[1] == (Assignment(1, 2, Decimal(90)),)


def test_optimiser_keeps_exclusive_contracts_exclusive_across_the_batch() -> None:
    contracts = [
        bc(1, max_share_count=1, remaining_count=1),
        bc(2, max_share_count=3),
        bc(3, max_share_count=3),
        bc(4, max_share_count=3),
    ]
    leads = [
        bl(1, {1: 150, 2: 40, 3: 40, 4: 40}),
        bl(2, {1: 100, 2: 30, 3: 30}),
        bl(3, {2: 20}, outbound_count=1, holder_max_share_counts=(1,)),
    ]
    best = optimise_batch(leads, contracts, mip_rel_gap=0.0)
    check(leads, contracts, best.assignments)
    # The exclusive contract has one lead left: lead 2 (100 vs 60 shared) gets it alone, lead
    # 1 goes to the three shared contracts (120) — 220, where greedy gives 150 + 60.
    assert best.by_lead[2] == (Assignment(2, 1, Decimal(100)),)
    assert {a.contract_id for a in best.by_lead[1]} == {2, 3, 4}
    assert 3 not in best.by_lead  # it already holds an exclusive contract
    assert best.objective == brute_force(leads, contracts) == Decimal(220)
    assert greedy_in_arrival_order(leads, contracts).objective == Decimal(210)


def test_optimiser_respects_remaining_budgets() -> None:
    contracts = [bc(1, remaining_budget=Decimal(100)), bc(2)]
    leads = [bl(i, {1: 60, 2: 10}, max_multiplication=1) for i in range(1, 4)]
    best = optimise_batch(leads, contracts)
    assert sum(1 for a in best.assignments if a.contract_id == 1) == 1
    assert best.objective == Decimal(80)
    check(leads, contracts, best.assignments)


def test_optimiser_respects_total_minimums_per_lead() -> None:
    contracts = [bc(1, remaining_count=1), bc(2), bc(3, remaining_count=1)]
    leads = [
        bl(1, {1: 50, 2: 10}, min_contracts=2),
        bl(2, {1: 30, 3: 30}, min_turnover=Decimal(60)),
        bl(3, {3: 25}),
    ]
    best = optimise_batch(leads, contracts, mip_rel_gap=0.0)
    check(leads, contracts, best.assignments)
    assert best.objective == brute_force(leads, contracts)


def test_optimiser_never_sells_a_lead_twice_to_one_company_or_group() -> None:
    contracts = [
        bc(1, company_id=1),
        bc(2, company_id=1),
        bc(3, contract_group_id=7),
        bc(4, contract_group_id=7),
        bc(5, company_id=9),
    ]
    leads = [bl(1, {1: 10, 2: 20, 3: 30, 4: 40, 5: 50}, received_company_ids=frozenset({9}))]
    best = optimise_batch(leads, contracts)
    assert {a.contract_id for a in best.assignments} == {2, 4}


def test_optimiser_reports_its_settings_and_bound() -> None:
    leads = [bl(1, {1: 10})]
    result = optimise_batch(leads, [bc(1)], time_limit=5.0, mip_rel_gap=1e-3)
    assert (result.time_limit, result.mip_rel_gap) == (5.0, 1e-3)
    assert result.upper_bound is not None and result.upper_bound >= float(result.objective)
    assert result.gap == 0.0 and result.n_edges == 1 and result.exact_model
    assert DEFAULT_TIME_LIMIT == 30.0 and DEFAULT_MIP_REL_GAP == 1e-3


def test_empty_batch_allocates_nothing() -> None:
    result = optimise_batch([bl(1, {1: 10}, max_multiplication=0)], [bc(1)])
    assert result.assignments == () and result.status == "empty"
    assert lp_upper_bound([], []) == 0.0


def test_unknown_contract_in_an_offer_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown contract"):
        optimise_batch([bl(1, {2: 10})], [bc(1)])


def test_batch_inputs_are_built_from_marketplace_snapshots() -> None:
    contracts = [
        contract(1, caps=CapLimits(day=3, week_budget=Decimal(50)), used=CapUsage(day=1)),
        contract(2, paused=True),
        contract(3, campaign="roofing"),
    ]
    the_lead = lead(outbound_count=1, holder_max_share_counts=(4,))
    batch = batch_lead(the_lead, contracts, workflow(rule("qs"), min_contracts=1), NOW)
    assert [o.contract_id for o in batch.offers] == [1]
    assert batch.limit == 4 and batch.outbound_count == 1 and batch.min_contracts == 1
    view = batch_contract(contracts[0])
    assert (view.remaining_count, view.remaining_budget) == (2, Decimal(50))


def test_allocation_violations_names_each_broken_rule() -> None:
    contracts = [bc(1, remaining_count=0, company_id=1), bc(2, company_id=1)]
    leads = [bl(1, {1: 10, 2: 10}, max_multiplication=1)]
    problems = allocation_violations(
        leads,
        contracts,
        [Assignment(1, 1, Decimal(10)), Assignment(1, 2, Decimal(10))],
    )
    text = " ".join(problems)
    assert "company" in text and "exceeds" in text and "count cap" in text


def test_greedy_goes_in_arrival_order() -> None:
    contracts = [bc(1, remaining_count=1)]
    leads = [bl(2, {1: 10}, arrival=NOW), bl(1, {1: 99}, arrival=NOW + timedelta(hours=1))]
    assert greedy_in_arrival_order(leads, contracts).assignments == (Assignment(2, 1, Decimal(10)),)


# --------------------------------------------------------------------------- properties


@st.composite
def batches(
    draw: st.DrawFn, max_leads: int, max_contracts: int, max_offers: int
) -> tuple[list[BatchLead], list[BatchContract]]:
    n_contracts = draw(st.integers(1, max_contracts))
    companies = draw(st.integers(1, n_contracts))
    contracts = [
        bc(
            cid,
            company_id=draw(st.integers(1, companies)),
            contract_group_id=draw(st.none() | st.integers(1, 3)),
            max_share_count=draw(st.integers(1, 4)),
            remaining_count=draw(st.none() | st.integers(0, 3)),
            remaining_budget=draw(st.none() | st.integers(0, 120).map(Decimal)),
        )
        for cid in range(1, n_contracts + 1)
    ]
    leads = []
    for lid in range(1, draw(st.integers(1, max_leads)) + 1):
        offered = draw(st.lists(st.integers(1, n_contracts), unique=True, max_size=max_offers))
        outbound = draw(st.integers(0, 1))
        leads.append(
            bl(
                lid,
                {cid: draw(st.integers(0, 60)) for cid in offered},
                max_multiplication=draw(st.none() | st.integers(0, 4)),
                outbound_count=outbound,
                holder_max_share_counts=tuple(draw(st.integers(1, 4)) for _ in range(outbound)),
                received_company_ids=frozenset(
                    draw(st.sets(st.integers(1, companies), max_size=1))
                ),
                min_contracts=draw(st.integers(0, 2)),
                min_turnover=draw(st.none() | st.integers(0, 70).map(Decimal)),
                arrival=NOW + timedelta(minutes=draw(st.integers(0, 5))),
            )
        )
    return leads, contracts


SMALL = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SMALL
@given(batch=batches(max_leads=4, max_contracts=4, max_offers=3))
def test_optimiser_equals_brute_force_on_tiny_batches(
    batch: tuple[list[BatchLead], list[BatchContract]],
) -> None:
    leads, contracts = batch
    best = optimise_batch(leads, contracts, mip_rel_gap=0.0)
    check(leads, contracts, best.assignments)
    assert best.objective == brute_force(leads, contracts)
    assert best.exact_model


@SMALL
@given(batch=batches(max_leads=25, max_contracts=8, max_offers=6))
def test_optimiser_is_feasible_at_least_greedy_and_at_most_the_lp_bound(
    batch: tuple[list[BatchLead], list[BatchContract]],
) -> None:
    leads, contracts = batch
    greedy = greedy_in_arrival_order(leads, contracts)
    best = optimise_batch(leads, contracts)
    bound = lp_upper_bound(leads, contracts)
    check(leads, contracts, greedy.assignments)
    check(leads, contracts, best.assignments)
    assert allocation_violations(leads, contracts, best.assignments) == []
    assert greedy.objective <= best.objective
    assert float(best.objective) <= bound + EPS * max(1.0, bound)
    assert best.upper_bound is not None
    assert float(best.objective) <= best.upper_bound + EPS * max(1.0, best.upper_bound)


def test_optimiser_on_a_few_hundred_leads_with_binding_caps() -> None:
    rng = random.Random(11)
    contracts = [
        bc(
            j,
            company_id=j // 2,
            max_share_count=rng.choice([1, 2, 3, 5]),
            remaining_count=rng.randint(2, 15),
            remaining_budget=Decimal(rng.randint(100, 600)) if rng.random() < 0.4 else None,
            contract_group_id=rng.randint(1, 5) if rng.random() < 0.1 else None,
        )
        for j in range(40)
    ]
    leads = [
        bl(
            i,
            {j: rng.randint(10, 90) for j in rng.sample(range(40), rng.randint(3, 10))},
            max_multiplication=rng.choice([1, 2, 3]),
        )
        for i in range(400)
    ]
    greedy = greedy_in_arrival_order(leads, contracts)
    best = optimise_batch(leads, contracts)
    check(leads, contracts, best.assignments)
    assert best.objective > greedy.objective * Decimal("1.2")  # caps bind: order matters
    assert best.upper_bound is not None and best.gap is not None
    assert float(best.objective) <= best.upper_bound + EPS * best.upper_bound
    assert best.status == "optimal" and best.gap <= DEFAULT_MIP_REL_GAP


@SMALL
@given(batch=batches(max_leads=4, max_contracts=5, max_offers=4))
def test_column_generation_bound_is_the_lp_bound_and_never_below_the_optimum(
    batch: tuple[list[BatchLead], list[BatchContract]],
) -> None:
    # Tiny leads are normally enumerated; with enumeration off every lead is priced by
    # column generation, whose bound must equal the full pattern LP and cover brute force.
    leads, contracts = batch
    full = lp_upper_bound(leads, contracts)
    saved = optimizer._ENUMERATE_UP_TO
    optimizer._ENUMERATE_UP_TO = -1
    try:
        priced = lp_upper_bound(leads, contracts)
        allocation = optimise_batch(leads, contracts)
    finally:
        optimizer._ENUMERATE_UP_TO = saved
    optimum = float(brute_force(leads, contracts))
    assert priced == pytest.approx(full, rel=1e-6, abs=1e-6)
    assert priced >= optimum - EPS
    check(leads, contracts, allocation.assignments)
    assert allocation.objective >= greedy_in_arrival_order(leads, contracts).objective
