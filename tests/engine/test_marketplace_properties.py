"""Properties of contract selection, checked by hypothesis against brute force."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from decimal import Decimal

from geopy.distance import geodesic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distribution.engine.marketplace import (
    CapLimits,
    CapUsage,
    ContractSnapshot,
    InboundLeadSnapshot,
    LocationPoint,
    SelectionMode,
    SelectionRuleSnapshot,
    SubsetItem,
    WorkflowSnapshot,
    best_subset,
    bounding_box,
    contract_eligibility,
    select_contracts,
)
from tests.engine.test_marketplace import NOW, contract, lead

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Instance:
    lead: InboundLeadSnapshot
    contracts: list[ContractSnapshot]
    max_multiplication: int | None


@st.composite
def instances(draw: st.DrawFn, max_contracts: int = 12) -> Instance:
    n = draw(st.integers(0, max_contracts))
    companies = draw(st.integers(1, max(1, n)))
    contracts = []
    for cid in range(1, n + 1):
        cap = draw(st.none() | st.integers(0, 3))
        contracts.append(
            contract(
                cid,
                company_id=draw(st.integers(1, companies)),
                contract_group_id=draw(st.none() | st.integers(1, 3)),
                price=Decimal(draw(st.integers(0, 60))),
                quality_score=float(draw(st.integers(0, 3))),
                max_share_count=draw(st.integers(1, 5)),
                trial=draw(st.booleans()),
                caps=CapLimits(day=cap),
                used=CapUsage(day=draw(st.integers(0, 3))),
                locations=(LocationPoint(52 + draw(st.integers(0, 9)) / 10, 5.0),),
                active=draw(st.booleans()) or draw(st.booleans()),
            )
        )
    outbound = draw(st.integers(0, 2))
    holders = tuple(draw(st.integers(1, 6)) for _ in range(outbound))
    the_lead = lead(
        outbound_count=outbound,
        holder_max_share_counts=holders,
        received_company_ids=frozenset(draw(st.sets(st.integers(1, companies), max_size=2))),
        received_group_ids=frozenset(draw(st.sets(st.integers(1, 3), max_size=1))),
    )
    return Instance(the_lead, contracts, draw(st.none() | st.integers(0, 6)))


rules_strategy = st.lists(
    st.builds(
        SelectionRuleSnapshot,
        position=st.integers(0, 5),
        mode=st.sampled_from(list(SelectionMode)),
        take=st.integers(0, 4),
        min_turnover=st.none() | st.integers(0, 80).map(Decimal),
    ),
    max_size=3,
)


def feasible(inst: Instance, chosen: tuple[ContractSnapshot, ...], take: int | None) -> bool:
    """Brute-force feasibility of adding `chosen` to the lead (independent of the engine)."""
    if take is not None and len(chosen) > take:
        return False
    companies = [c.company_id for c in chosen]
    groups = [c.contract_group_id for c in chosen if c.contract_group_id is not None]
    if len(set(companies)) < len(companies) or len(set(groups)) < len(groups):
        return False
    final = inst.lead.outbound_count + len(chosen)
    limits = [c.max_share_count for c in chosen] + list(inst.lead.holder_max_share_counts)
    if inst.max_multiplication is not None:
        limits.append(inst.max_multiplication)
    return all(final <= limit for limit in limits)


def brute_best(inst: Instance, take: int, key: str) -> tuple[int, Decimal]:
    eligible = [c for c in inst.contracts if contract_eligibility(c, inst.lead, NOW) is None]
    best = (0, Decimal(0))
    for size in range(1, len(eligible) + 1):
        for chosen in itertools.combinations(eligible, size):
            if not feasible(inst, chosen, take):
                continue
            value = (len(chosen), sum((c.price for c in chosen), Decimal(0)))
            if key == "turnover":
                best = max(best, value, key=lambda v: (v[1],))
            else:
                best = max(best, value)
    return best


@SETTINGS
@given(inst=instances(), rules=rules_strategy, seed=st.integers(0, 10**6))
def test_selection_never_breaks_share_counts_multiplication_caps_or_companies(
    inst: Instance, rules: list[SelectionRuleSnapshot], seed: int
) -> None:
    wf = WorkflowSnapshot(max_multiplication=inst.max_multiplication, rules=tuple(rules))
    decision = select_contracts(inst.lead, inst.contracts, wf, NOW, random.Random(seed))
    by_id = {c.id: c for c in inst.contracts}
    chosen = tuple(by_id[cid] for cid in decision.chosen_ids)
    assert not chosen or feasible(inst, chosen, None)
    for c in chosen:
        assert contract_eligibility(c, inst.lead, NOW) is None  # so caps are not reached
        assert c.company_id not in inst.lead.received_company_ids
    ordered = sorted(rules, key=lambda r: r.position)
    assert [o.position for o in decision.rules] == [r.position for r in ordered]
    for outcome, rule in zip(decision.rules, ordered, strict=True):
        if not outcome.skipped:
            assert len(outcome.chosen_ids) <= max(rule.take, 0)
            if outcome.chosen_ids:
                assert rule.min_turnover is None or outcome.turnover >= rule.min_turnover
    assert decision.outbound_count_after == inst.lead.outbound_count + len(chosen)
    assert sorted(line.contract_id for line in decision.candidates) == sorted(by_id)
    assert all(
        (line.reason is None) == (line.contract_id in decision.chosen_ids)
        for line in decision.candidates
    )


@SETTINGS
@given(inst=instances(), take=st.integers(1, 6))
def test_turnover_mode_equals_brute_force(inst: Instance, take: int) -> None:
    wf = WorkflowSnapshot(
        max_multiplication=inst.max_multiplication,
        rules=(SelectionRuleSnapshot(position=1, mode=SelectionMode.TURNOVER, take=take),),
    )
    decision = select_contracts(inst.lead, inst.contracts, wf, NOW, random.Random(0))
    assert decision.turnover == brute_best(inst, take, "turnover")[1]


@SETTINGS
@given(inst=instances(), take=st.integers(1, 6))
def test_lead_count_mode_equals_brute_force(inst: Instance, take: int) -> None:
    wf = WorkflowSnapshot(
        max_multiplication=inst.max_multiplication,
        rules=(SelectionRuleSnapshot(position=1, mode=SelectionMode.LEAD_COUNT, take=take),),
    )
    decision = select_contracts(inst.lead, inst.contracts, wf, NOW, random.Random(0))
    assert (len(decision.chosen), decision.turnover) == brute_best(inst, take, "lead_count")


@SETTINGS
@given(
    items=st.lists(
        st.tuples(
            st.integers(-20, 50),  # weight
            st.integers(1, 5),  # max_share_count
            st.integers(1, 4),  # company
            st.none() | st.integers(1, 4),  # group
        ),
        max_size=10,
    ),
    outbound=st.integers(0, 2),
    limit=st.integers(0, 6),
    take=st.integers(0, 6),
    min_size=st.integers(1, 3),
)
def test_best_subset_equals_brute_force_with_companies_and_groups(
    items: list[tuple[int, int, int, int | None]],
    outbound: int,
    limit: int,
    take: int,
    min_size: int,
) -> None:
    subset_items = [
        SubsetItem(i, (Decimal(w),), msc, company, group, i)
        for i, (w, msc, company, group) in enumerate(items)
    ]
    found = best_subset(
        subset_items, outbound_count=outbound, limit=limit, take=take, min_size=min_size
    )

    def ok(chosen: tuple[SubsetItem, ...]) -> bool:
        companies = [it.company_id for it in chosen]
        groups = [it.group_id for it in chosen if it.group_id is not None]
        final = outbound + len(chosen)
        return (
            min_size <= len(chosen) <= take
            and len(set(companies)) == len(companies)
            and len(set(groups)) == len(groups)
            and final <= limit
            and all(final <= it.max_share_count for it in chosen)
        )

    values = [
        sum(it.weight[0] for it in chosen)
        for size in range(1, len(subset_items) + 1)
        for chosen in itertools.combinations(subset_items, size)
        if ok(chosen)
    ]
    if not values:
        assert found == []
    else:
        assert ok(tuple(found))
        assert sum(it.weight[0] for it in found) == max(values)


@settings(max_examples=500, deadline=None)
@given(
    lat=st.floats(-89.5, 89.5),
    lon=st.floats(-179.9, 179.9),
    km=st.floats(0.01, 500),
    fraction=st.floats(0, 1),
    bearing=st.floats(0, 360),
)
def test_bounding_box_contains_every_point_within_the_distance(
    lat: float, lon: float, km: float, fraction: float, bearing: float
) -> None:
    point = geodesic(kilometers=km * fraction).destination((lat, lon), bearing)
    box = bounding_box(lat, lon, km)
    assert box.contains(point.latitude, point.longitude)


@SETTINGS
@given(
    points=st.lists(st.tuples(st.floats(-60, 60), st.floats(-170, 170)), min_size=1, max_size=15),
    centre=st.tuples(st.floats(-60, 60), st.floats(-170, 170)),
)
def test_distance_mode_orders_by_exact_geodesic_distance(
    points: list[tuple[float, float]], centre: tuple[float, float]
) -> None:
    contracts = [
        contract(i + 1, max_share_count=100, locations=(LocationPoint(lat, lon),))
        for i, (lat, lon) in enumerate(points)
    ]
    the_lead = lead(latitude=centre[0], longitude=centre[1])
    wf = WorkflowSnapshot(
        max_multiplication=100,
        rules=(SelectionRuleSnapshot(position=1, mode=SelectionMode.DISTANCE, take=100),),
    )
    decision = select_contracts(the_lead, contracts, wf, NOW, random.Random(0))
    expected = sorted(
        contracts,
        key=lambda c: (geodesic(centre, (c.locations[0].lat, c.locations[0].lon)).km, c.id),
    )
    assert decision.chosen_ids == tuple(c.id for c in expected)


@SETTINGS
@given(inst=instances(), rules=rules_strategy, seed=st.integers(0, 1000))
def test_selection_is_deterministic_for_a_seed(
    inst: Instance, rules: list[SelectionRuleSnapshot], seed: int
) -> None:
    wf = WorkflowSnapshot(max_multiplication=inst.max_multiplication, rules=tuple(rules))
    first = select_contracts(inst.lead, inst.contracts, wf, NOW, random.Random(seed))
    again = select_contracts(
        inst.lead, list(reversed(inst.contracts)), wf, NOW, random.Random(seed)
    )
    assert first.chosen_ids == again.chosen_ids
    assert first.candidates == again.candidates


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(
        st.tuples(
            st.integers(1, 6),  # company
            st.none() | st.integers(1, 4),  # group
            st.integers(0, 9),  # price
            st.integers(1, 6),  # max_share_count
        ),
        min_size=1,
        max_size=80,
    ),
    take=st.integers(1, 5),
    outbound=st.integers(0, 2),
    mode=st.sampled_from([SelectionMode.TURNOVER, SelectionMode.LEAD_COUNT]),
)
def test_optimising_modes_equal_the_exact_subset_over_all_contracts(
    specs: list[tuple[int, int | None, int, int]],
    take: int,
    outbound: int,
    mode: SelectionMode,
) -> None:
    # Many contracts of few companies and groups: the lazy scan stops early; its answer
    # must weigh what the exact solver finds over every eligible contract.
    contracts = [
        contract(i + 1, company_id=co, contract_group_id=g, price=p, max_share_count=m)
        for i, (co, g, p, m) in enumerate(specs)
    ]
    the_lead = lead(outbound_count=outbound, holder_max_share_counts=(6,) * outbound)
    wf = WorkflowSnapshot(
        max_multiplication=6, rules=(SelectionRuleSnapshot(position=1, mode=mode, take=take),)
    )
    decision = select_contracts(the_lead, contracts, wf, NOW, random.Random(0))
    eligible = [c for c in contracts if contract_eligibility(c, the_lead, NOW) is None]
    one = Decimal(1)
    items = [
        SubsetItem(
            c.id,
            (c.price,) if mode is SelectionMode.TURNOVER else (one, c.price),
            c.max_share_count,
            c.company_id,
            c.contract_group_id,
            c.id,
        )
        for c in eligible
    ]
    best = best_subset(items, outbound_count=outbound, limit=6, take=take)
    expected = (len(best), sum((it.weight[-1] for it in best), Decimal(0)))
    got = (len(decision.chosen), decision.turnover)
    if mode is SelectionMode.TURNOVER:
        assert got[1] == expected[1]
    else:
        assert got == expected
