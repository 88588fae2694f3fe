"""A compiled `ContractTable` decides exactly as the contract-by-contract path."""

from __future__ import annotations

import random
from datetime import time, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distribution.engine.marketplace import (
    CapLimits,
    CapUsage,
    ContractSnapshot,
    ContractTable,
    DeliverySchedule,
    InboundLeadSnapshot,
    LocationPoint,
    Reason,
    SelectionMode,
    SelectionRuleSnapshot,
    WeeklyInterval,
    WorkflowSnapshot,
    select_contracts,
)
from tests.engine.test_marketplace import NOW, contract, lead, rule, workflow

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Around Utrecht, with radii that put many locations near the edge of their disc.
lat_st = st.floats(51.9, 52.3, allow_nan=False)
lon_st = st.floats(4.9, 5.4, allow_nan=False)
SCHEDULES = (
    DeliverySchedule("Europe/Amsterdam", (WeeklyInterval(2, time(9), time(17)),)),
    DeliverySchedule("America/New_York", (WeeklyInterval(2, time(9), time(17)),)),
)


@st.composite
def contracts_st(draw: st.DrawFn) -> list[ContractSnapshot]:
    n = draw(st.integers(0, 25))
    out = []
    for cid in range(1, n + 1):
        cap = draw(st.none() | st.integers(0, 3))
        budget = draw(st.none() | st.integers(0, 40).map(Decimal))
        out.append(
            contract(
                cid,
                company_id=draw(st.integers(1, 8)),
                contract_group_id=draw(st.none() | st.integers(1, 3)),
                campaign=draw(st.sampled_from(["solar", "solar", "solar", "heat"])),
                price=Decimal(draw(st.integers(0, 30))),
                quality_score=float(draw(st.integers(0, 3))),
                max_share_count=draw(st.integers(1, 4)),
                trial=draw(st.booleans()),
                active=draw(st.booleans()) or draw(st.booleans()),
                paused=draw(st.integers(0, 5)) == 0,
                starts=draw(st.none() | st.sampled_from([NOW.date(), NOW.date().replace(day=9)])),
                ends=draw(st.none() | st.sampled_from([NOW.date(), NOW.date().replace(day=1)])),
                caps=CapLimits(day=cap, day_budget=budget),
                used=CapUsage(
                    day=draw(st.integers(0, 3)), day_spent=Decimal(draw(st.integers(0, 40)))
                ),
                radius_km=draw(st.none() | st.floats(0.5, 30.0, allow_nan=False)),
                locations=tuple(
                    LocationPoint(draw(lat_st), draw(lon_st))
                    for _ in range(draw(st.integers(0, 3)))
                ),
                delivery_schedule=draw(st.none() | st.sampled_from(SCHEDULES)),
                max_lead_age=draw(
                    st.none()
                    | st.sampled_from(
                        [timedelta(minutes=30), timedelta(hours=1), timedelta(days=1)]
                    )
                ),
                min_lead_score=draw(st.none() | st.floats(0, 100, allow_nan=False)),
                last_outbound_at=draw(
                    st.none() | st.sampled_from([NOW - timedelta(hours=h) for h in (1, 2, 3)])
                ),
            )
        )
    return out


@st.composite
def leads_st(draw: st.DrawFn) -> InboundLeadSnapshot:
    has_point = draw(st.integers(0, 6)) > 0
    outbound = draw(st.integers(0, 2))
    return lead(
        campaign=draw(st.sampled_from(["solar", "solar", "heat", None])),
        latitude=draw(lat_st) if has_point else None,
        longitude=draw(lon_st) if has_point else None,
        score=draw(st.none() | st.floats(0, 100, allow_nan=False)),
        outbound_count=outbound,
        holder_max_share_counts=tuple(draw(st.integers(1, 5)) for _ in range(outbound)),
        received_company_ids=frozenset(draw(st.sets(st.integers(1, 8), max_size=2))),
        received_group_ids=frozenset(draw(st.sets(st.integers(1, 3), max_size=1))),
    )


rules_st = st.lists(
    st.builds(
        SelectionRuleSnapshot,
        position=st.integers(0, 5),
        mode=st.sampled_from(list(SelectionMode)),
        take=st.integers(0, 3),
        min_turnover=st.none() | st.integers(0, 40).map(Decimal),
    ),
    max_size=3,
)


@SETTINGS
@given(
    contracts=contracts_st(),
    the_lead=leads_st(),
    rules=rules_st,
    max_mult=st.none() | st.integers(0, 5),
    seed=st.integers(0, 10**6),
    hours=st.integers(0, 30),
)
def test_table_decides_exactly_as_the_contract_by_contract_path(
    contracts: list[ContractSnapshot],
    the_lead: InboundLeadSnapshot,
    rules: list[SelectionRuleSnapshot],
    max_mult: int | None,
    seed: int,
    hours: int,
) -> None:
    now = NOW + timedelta(hours=hours)
    wf = WorkflowSnapshot(max_multiplication=max_mult, rules=tuple(rules))
    plain = select_contracts(the_lead, contracts, wf, now, random.Random(seed))
    table = ContractTable(reversed(contracts))
    compiled = select_contracts(the_lead, table, wf, now, random.Random(seed))
    assert compiled.chosen == plain.chosen
    assert compiled.reason == plain.reason
    assert compiled.rules == plain.rules
    assert compiled.candidates == plain.candidates
    assert compiled.explanation.reason_counts() == plain.explanation.reason_counts()
    for k in (0, 1, 3, len(contracts)):
        assert compiled.explanation.head(k) == list(plain.candidates[:k])


def test_updating_a_contract_in_the_table_changes_only_that_contract() -> None:
    first = contract(1, price=50, caps=CapLimits(day=2), used=CapUsage(day=1))
    second = contract(2, price=40)
    table = ContractTable([first, second])
    wf = workflow(rule("qs", take=1))
    assert select_contracts(lead(), table, wf, NOW, random.Random(1)).chosen_ids == (1,)

    table.update(contract(1, price=50, caps=CapLimits(day=2), used=CapUsage(day=2)))
    decision = select_contracts(lead(), table, wf, NOW, random.Random(1))
    assert decision.chosen_ids == (2,)
    assert decision.explanation.line_for(1).reason is Reason.CAP_REACHED

    table.update(contract(2, price=40, quality_score=9.0, radius_km=1.0, locations=()))
    decision = select_contracts(lead(), table, wf, NOW, random.Random(1))
    assert decision.chosen_ids == ()
    assert decision.explanation.line_for(2).reason is Reason.OUT_OF_SERVICE_AREA


def test_a_lead_screened_against_ten_thousand_contracts_keeps_only_the_nearby_ones() -> None:
    rng = random.Random(5)
    contracts = [
        contract(
            cid,
            radius_km=float(rng.randint(5, 40)),
            locations=(LocationPoint(rng.uniform(50.8, 53.5), rng.uniform(3.4, 7.2)),),
        )
        for cid in range(1, 10_001)
    ]
    table = ContractTable(contracts)
    decision = select_contracts(
        lead(), table, workflow(rule("distance", take=3)), NOW, random.Random(1)
    )
    plain = select_contracts(
        lead(), contracts, workflow(rule("distance", take=3)), NOW, random.Random(1)
    )
    assert decision.chosen == plain.chosen and len(decision.chosen) == 3
    counts = decision.explanation.reason_counts()
    assert counts == plain.explanation.reason_counts()
    assert counts["out_of_service_area"] > 9_000


@settings(max_examples=2000, deadline=None)
@given(
    lat1=st.floats(-89.9, 89.9),
    lon1=st.floats(-179.9, 179.9),
    dlat=st.floats(-3.0, 3.0),
    dlon=st.floats(-3.0, 3.0),
)
def test_latitude_aware_distance_bounds_hold_the_exact_geodesic(
    lat1: float, lon1: float, dlat: float, dlon: float
) -> None:
    """The tight bounds that spare most geodesics never exclude the exact value."""
    import math

    import numpy as np
    from geopy.distance import geodesic

    from distribution.engine.marketplace.geo import EARTH_MEAN_KM, curvature_bounds

    lat2 = max(-90.0, min(90.0, lat1 + dlat))
    lon2 = lon1 + dlon
    p1, p2 = np.radians([lat1, lon1]), np.radians([lat2, lon2])
    h = (
        math.sin((p2[0] - p1[0]) / 2) ** 2
        + math.cos(p1[0]) * math.cos(p2[0]) * math.sin((p2[1] - p1[1]) / 2) ** 2
    )
    theta = np.array([2.0 * math.asin(math.sqrt(min(h, 1.0)))])
    low, high = curvature_bounds(abs(p1[0]), np.array([abs(p2[0])]), theta)
    approx = EARTH_MEAN_KM * theta[0]
    exact = geodesic((lat1, lon1), (lat2, lon2)).km
    assert approx * low[0] - 1e-6 <= exact <= approx * high[0] + 1e-6


def test_a_lead_nobody_can_place_is_no_coordinates_not_out_of_area_in_both_paths() -> None:
    """Issue 12 item 8: a contract with a service area and a lead without coordinates (its
    place unknown) says `no_coordinates`; a contract without an area still buys it."""
    area = contract(1, radius_km=50.0, locations=(LocationPoint(52.37, 4.90),))
    far = contract(2, radius_km=5.0, locations=(LocationPoint(53.2, 6.5),))
    anywhere = contract(3)
    nowhere = lead(latitude=None, longitude=None)
    wf = workflow(rule("qs", take=3))
    for contracts in ([area, far, anywhere], ContractTable([area, far, anywhere])):
        decision = select_contracts(nowhere, contracts, wf, NOW, random.Random(1))
        assert decision.chosen_ids == (3,)
        assert decision.explanation.line_for(1).reason is Reason.NO_COORDINATES
        assert decision.explanation.line_for(2).reason is Reason.NO_COORDINATES
        assert decision.explanation.reason_counts()["no_coordinates"] == 2
        assert "out_of_service_area" not in decision.explanation.reason_counts()
