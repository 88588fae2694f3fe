"""Marketplace contract selection (seed 000): one test per engine-related sentence, plus the
eligibility rules of DESIGN §4 and the explanation every decision carries."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from geopy.distance import geodesic

from distribution.engine.marketplace import (
    CapLimits,
    CapUsage,
    ContractSnapshot,
    DeliverySchedule,
    InboundLeadSnapshot,
    LocationPoint,
    OutboundRecord,
    Reason,
    SelectionDecision,
    SelectionMode,
    SelectionRuleSnapshot,
    WeeklyInterval,
    WorkflowSnapshot,
    bounding_box,
    check_manual_selection,
    contract_eligibility,
    eligible_contracts,
    nearest_location_km,
    remaining_room,
    select_contracts,
)

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)  # a Wednesday
CAMPAIGN = "solar"
UTRECHT = (52.0907, 5.1214)
AMSTERDAM = LocationPoint(52.3676, 4.9041)
ROTTERDAM = LocationPoint(51.9244, 4.4777)
AMERSFOORT = LocationPoint(52.1561, 5.3878)
GRONINGEN = LocationPoint(53.2194, 6.5665)


# --------------------------------------------------------------------------- builders


def contract(cid: int, **fields: Any) -> ContractSnapshot:
    """A contract of its own company, eligible for a fresh `lead()` unless told otherwise."""
    values: dict[str, Any] = {
        "id": cid,
        "name": f"contract-{cid}",
        "company_id": cid,
        "campaign": CAMPAIGN,
        "price": Decimal("10"),
        "quality_score": 5.0,
        "max_share_count": 5,
        "created_at": NOW - timedelta(days=100 - cid),
    }
    if "price" in fields and not isinstance(fields["price"], Decimal):
        fields["price"] = Decimal(str(fields["price"]))
    values.update(fields)
    return ContractSnapshot(**values)


def lead(**fields: Any) -> InboundLeadSnapshot:
    values: dict[str, Any] = {
        "id": 1,
        "campaign": CAMPAIGN,
        "created_at": NOW - timedelta(hours=1),
        "latitude": UTRECHT[0],
        "longitude": UTRECHT[1],
    }
    values.update(fields)
    return InboundLeadSnapshot(**values)


def rule(
    mode: SelectionMode | str, take: int = 1, position: int = 1, min_turnover: Any = None
) -> SelectionRuleSnapshot:
    return SelectionRuleSnapshot(
        position=position,
        mode=SelectionMode(mode),
        take=take,
        min_turnover=None if min_turnover is None else Decimal(str(min_turnover)),
    )


def workflow(
    *rules: SelectionRuleSnapshot, max_multiplication: int | None = 5, **fields: Any
) -> WorkflowSnapshot:
    if fields.get("min_turnover") is not None:
        fields["min_turnover"] = Decimal(str(fields["min_turnover"]))
    return WorkflowSnapshot(max_multiplication=max_multiplication, rules=tuple(rules), **fields)


def select(
    contracts: list[ContractSnapshot],
    wf: WorkflowSnapshot,
    the_lead: InboundLeadSnapshot | None = None,
    seed: int = 0,
    now: datetime = NOW,
) -> SelectionDecision:
    return select_contracts(the_lead or lead(), contracts, wf, now, random.Random(seed))


def reason_of(decision: SelectionDecision, cid: int) -> Reason | None:
    line = decision.explanation_for(cid)
    assert line is not None
    return line.reason


# --------------------------------------------------------------------------- seed 000


def test_distribution_is_either_automatic_by_rules_or_manual_by_choice() -> None:
    contracts = [contract(1, quality_score=9.0), contract(2, quality_score=1.0)]
    automatic = select(contracts, workflow(rule("qs", take=1)))
    manual = check_manual_selection(lead(), [contracts[1]], workflow(), NOW)
    assert automatic.chosen_ids == (1,)
    assert manual.chosen_ids == (2,)
    assert manual.chosen[0].rule_position is None


def test_lead_without_campaign_is_not_distributed_automatically() -> None:
    decision = select([contract(1)], workflow(rule("qs")), lead(campaign=None))
    assert decision.chosen == ()
    assert decision.reason == Reason.NO_CAMPAIGN
    assert reason_of(decision, 1) == Reason.NO_CAMPAIGN


def test_lead_without_campaign_can_be_distributed_manually() -> None:
    no_campaign = lead(campaign=None)
    decision = check_manual_selection(no_campaign, [contract(1)], workflow(), NOW)
    assert decision.chosen_ids == (1,)
    assert contract_eligibility(contract(1), no_campaign, NOW) == Reason.NO_CAMPAIGN


def test_manual_distribution_lets_the_manager_override_ranking_and_caps() -> None:
    over_cap = contract(2, caps=CapLimits(day=3), used=CapUsage(day=3))
    decision = check_manual_selection(
        lead(), [contract(1, quality_score=0.0), over_cap], workflow(), NOW
    )
    assert decision.chosen_ids == (1, 2)
    line = decision.explanation_for(2)
    assert line is not None and line.reason is None and line.note == Reason.CAP_REACHED


def test_manual_distribution_still_respects_multiplication_share_count_and_companies() -> None:
    received = lead(
        received_company_ids=frozenset({7}), outbound_count=1, holder_max_share_counts=(3,)
    )
    decision = check_manual_selection(
        received,
        [
            contract(1, company_id=7),
            contract(2, max_share_count=1),
            contract(3),
            contract(4, company_id=3),
            contract(5),
            contract(6),
        ],
        workflow(max_multiplication=3),
        NOW,
    )
    assert decision.chosen_ids == (3, 5)
    assert reason_of(decision, 1) == Reason.ALREADY_RECEIVED
    assert reason_of(decision, 2) == Reason.SHARE_COUNT_EXCEEDED
    assert reason_of(decision, 4) == Reason.COMPANY_ALREADY_SELECTED
    assert reason_of(decision, 6) == Reason.MULTIPLICATION_REACHED
    assert decision.outbound_count_after == 3


def test_cherry_picked_outbound_leads_do_not_count_toward_share_count() -> None:
    records = [OutboundRecord(contract_id=90, company_id=90, max_share_count=1, cherry_picked=True)]
    the_lead = lead().with_outbound(records)
    assert the_lead.outbound_count == 0
    assert the_lead.holder_max_share_counts == ()
    decision = select([contract(1), contract(2)], workflow(rule("qs", take=2)), the_lead)
    assert decision.chosen_ids == (1, 2)


def test_cherry_picked_outbound_leads_do_not_count_as_distributed() -> None:
    records = [
        OutboundRecord(contract_id=90, company_id=90, max_share_count=5, cherry_picked=True),
        OutboundRecord(contract_id=91, company_id=91, max_share_count=5, cherry_picked=True),
    ]
    the_lead = lead().with_outbound(records)
    assert remaining_room(the_lead, workflow(max_multiplication=1)) == 1
    decision = select([contract(1)], workflow(rule("qs"), max_multiplication=1), the_lead)
    assert decision.chosen_ids == (1,)


def test_cherry_picked_company_is_not_sold_the_same_lead_again() -> None:
    records = [OutboundRecord(contract_id=90, company_id=7, max_share_count=5, cherry_picked=True)]
    the_lead = lead().with_outbound(records)
    assert contract_eligibility(contract(1, company_id=7), the_lead, NOW) == Reason.ALREADY_RECEIVED


def test_distributed_outbound_leads_count_toward_share_count_and_multiplication() -> None:
    records = [OutboundRecord(contract_id=90, company_id=90, max_share_count=2)]
    the_lead = lead().with_outbound(records)
    assert (the_lead.outbound_count, the_lead.holder_max_share_counts) == (1, (2,))
    assert remaining_room(the_lead, workflow(max_multiplication=5)) == 1


def test_window_recheck_finds_newly_available_contract_within_existing_share_counts() -> None:
    existing = lead(
        outbound_count=1, holder_max_share_counts=(3,), received_company_ids=frozenset({7})
    )
    contracts = [
        contract(1, max_share_count=1, quality_score=9.0),  # would make it 2 > 1
        contract(2, company_id=7),  # company 7 already has it
        contract(3, max_share_count=2),
    ]
    decision = select(contracts, workflow(rule("qs", take=3)), existing)
    assert decision.chosen_ids == (3,)
    assert reason_of(decision, 1) == Reason.SHARE_COUNT_EXCEEDED
    assert reason_of(decision, 2) == Reason.ALREADY_RECEIVED
    assert decision.outbound_count_after == 2


def test_window_room_is_zero_once_multiplication_is_reached() -> None:
    full = lead(outbound_count=3, holder_max_share_counts=(5, 5, 5))
    assert remaining_room(full, workflow(max_multiplication=3)) == 0
    decision = select([contract(1)], workflow(rule("qs"), max_multiplication=3), full)
    assert decision.chosen == ()
    assert decision.reason == Reason.MULTIPLICATION_REACHED


def test_without_selection_rules_nothing_is_distributed() -> None:
    decision = select([contract(1)], workflow())
    assert decision.chosen == ()
    assert decision.reason == Reason.NO_SELECTION_RULES
    assert reason_of(decision, 1) == Reason.NO_RULE


@pytest.mark.parametrize("mode", list(SelectionMode))
def test_take_selects_at_most_that_many_contracts(mode: SelectionMode) -> None:
    contracts = [
        contract(i, price=10 + i, locations=(AMSTERDAM,), trial=i % 2 == 0) for i in range(1, 7)
    ]
    decision = select(contracts, workflow(rule(mode, take=2), max_multiplication=6))
    assert len(decision.chosen) == 2
    reasons = {reason_of(decision, i) for i in range(1, 7)} - {None}
    assert reasons == {Reason.TAKE_REACHED}


def test_rule_skipped_when_min_turnover_not_reached() -> None:
    contracts = [contract(1, price=20, quality_score=9.0), contract(2, price=40, quality_score=1.0)]
    decision = select(contracts, workflow(rule("qs", take=1, min_turnover=30)))
    assert decision.chosen == ()
    outcome = decision.rules[0]
    assert outcome.skipped and outcome.reason == Reason.RULE_SKIPPED_MIN_TURNOVER
    assert outcome.chosen_ids == (1,) and outcome.turnover == Decimal(20)
    assert reason_of(decision, 1) == Reason.RULE_SKIPPED_MIN_TURNOVER


def test_skipped_rule_leaves_its_contracts_to_the_next_rule() -> None:
    contracts = [contract(1, price=20, quality_score=9.0), contract(2, price=40, quality_score=1.0)]
    wf = workflow(rule("qs", take=1, position=1, min_turnover=30), rule("qs", take=1, position=2))
    decision = select(contracts, wf)
    assert decision.chosen_ids == (1,)
    assert decision.chosen[0].rule_position == 2
    assert [r.skipped for r in decision.rules] == [True, False]


def test_rule_kept_when_min_turnover_reached() -> None:
    contracts = [contract(1, price=20), contract(2, price=15)]
    decision = select(contracts, workflow(rule("turnover", take=2, min_turnover=35)))
    assert set(decision.chosen_ids) == {1, 2}
    assert not decision.rules[0].skipped


def test_qs_mode_sorts_by_quality_score_then_highest_price() -> None:
    contracts = [
        contract(1, quality_score=9.0, price=10),
        contract(2, quality_score=9.0, price=30),
        contract(3, quality_score=7.0, price=100),
        contract(4, quality_score=8.0, price=1),
    ]
    decision = select(contracts, workflow(rule("qs", take=4)))
    assert decision.chosen_ids == (2, 1, 4, 3)
    assert [c.rank for c in decision.chosen] == [1, 2, 3, 4]


def test_random_mode_is_reproducible_for_a_seed() -> None:
    contracts = [contract(i) for i in range(1, 9)]
    wf = workflow(rule("random", take=3))
    assert select(contracts, wf, seed=42).chosen_ids == select(contracts, wf, seed=42).chosen_ids
    orders = {select(contracts, wf, seed=s).chosen_ids for s in range(20)}
    assert len(orders) > 10


def test_random_mode_sorts_the_contracts_completely_at_random() -> None:
    # Quality score and price play no part: each of four contracts comes first about as often.
    contracts = [
        contract(1, quality_score=9.0, price=90),
        contract(2, quality_score=1.0, price=1),
        contract(3, quality_score=5.0, price=50),
        contract(4, quality_score=3.0, price=20),
    ]
    wf = workflow(rule("random", take=1))
    firsts = [select(contracts, wf, seed=s).chosen_ids[0] for s in range(800)]
    for cid in range(1, 5):
        assert 140 < firsts.count(cid) < 260


def test_round_robin_sorts_by_oldest_last_outbound_lead() -> None:
    contracts = [
        contract(1, last_outbound_at=NOW - timedelta(hours=1)),
        contract(2, last_outbound_at=NOW - timedelta(days=3)),
        contract(3, last_outbound_at=NOW - timedelta(days=1)),
    ]
    decision = select(contracts, workflow(rule("round_robin", take=3)))
    assert decision.chosen_ids == (2, 3, 1)


def test_round_robin_uses_contract_creation_date_when_no_leads_received() -> None:
    contracts = [
        contract(1, last_outbound_at=NOW - timedelta(days=2), created_at=NOW - timedelta(days=90)),
        contract(2, last_outbound_at=None, created_at=NOW - timedelta(days=10)),
        contract(3, last_outbound_at=None, created_at=NOW - timedelta(days=1)),
    ]
    decision = select(contracts, workflow(rule("round_robin", take=3)))
    assert decision.chosen_ids == (2, 1, 3)


def test_distance_mode_sorts_by_nearest_company_location() -> None:
    contracts = [
        contract(1, locations=(AMSTERDAM,)),
        contract(2, locations=(GRONINGEN, AMERSFOORT)),  # nearest: Amersfoort
        contract(3, locations=(ROTTERDAM,)),
    ]
    decision = select(contracts, workflow(rule("distance", take=3)))
    assert decision.chosen_ids == (2, 1, 3)
    line = decision.explanation_for(2)
    assert line is not None and line.distance_km is not None
    expected = geodesic(UTRECHT, (AMERSFOORT.lat, AMERSFOORT.lon)).km
    assert line.distance_km == pytest.approx(expected)


def test_distance_mode_ranks_contracts_without_location_last() -> None:
    contracts = [contract(1), contract(2, locations=(GRONINGEN,))]
    decision = select(contracts, workflow(rule("distance", take=2)))
    assert decision.chosen_ids == (2, 1)


def test_distance_mode_matches_exact_geodesic_order() -> None:
    rng = random.Random(7)
    contracts = [
        contract(
            i,
            max_share_count=1000,
            locations=tuple(
                LocationPoint(rng.uniform(51.9, 52.3), rng.uniform(4.8, 5.4))
                for _ in range(rng.randint(1, 3))
            ),
        )
        for i in range(1, 301)
    ]
    decision = select(contracts, workflow(rule("distance", take=300), max_multiplication=300))

    def nearest(c: ContractSnapshot) -> float:
        found = nearest_location_km(c, *UTRECHT)
        assert found is not None
        return found

    expected = sorted(contracts, key=lambda c: (nearest(c), -c.quality_score, -c.price, c.id))
    assert decision.chosen_ids == tuple(c.id for c in expected)


def test_distance_mode_examines_few_contracts_exactly() -> None:
    rng = random.Random(3)
    contracts = [
        contract(i, locations=(LocationPoint(rng.uniform(50.8, 53.4), rng.uniform(3.4, 7.2)),))
        for i in range(1, 2001)
    ]
    decision = select(contracts, workflow(rule("distance", take=3)))
    exact = [line for line in decision.candidates if line.distance_km is not None]
    assert len(decision.chosen) == 3
    assert len(exact) < 100  # lower bounds spare the geodesic for nearly all contracts
    best = min(contracts, key=lambda c: nearest_location_km(c, *UTRECHT) or 0.0)
    assert decision.chosen_ids[0] == best.id


def test_free_trial_mode_puts_trial_contracts_first_then_paid_by_price() -> None:
    contracts = [
        contract(1, price=50),
        contract(2, price=0, trial=True),
        contract(3, price=80),
        contract(4, price=0, trial=True, quality_score=8.0),
    ]
    decision = select(contracts, workflow(rule("free_trial", take=4)))
    assert decision.chosen_ids == (4, 2, 3, 1)


def test_turnover_mode_maximises_turnover_with_shared_contracts() -> None:
    contracts = [
        contract(1, price=100, max_share_count=1),
        contract(2, price=40, max_share_count=3),
        contract(3, price=40, max_share_count=3),
        contract(4, price=40, max_share_count=3),
    ]
    decision = select(contracts, workflow(rule("turnover", take=5)))
    assert set(decision.chosen_ids) == {2, 3, 4}
    assert decision.turnover == Decimal(120)
    assert reason_of(decision, 1) == Reason.SHARE_COUNT_EXCEEDED


def test_turnover_mode_maximises_turnover_with_an_exclusive_contract() -> None:
    contracts = [
        contract(1, price=150, max_share_count=1),
        contract(2, price=40, max_share_count=3),
        contract(3, price=40, max_share_count=3),
        contract(4, price=40, max_share_count=3),
    ]
    decision = select(contracts, workflow(rule("turnover", take=5)))
    assert decision.chosen_ids == (1,)
    assert decision.outbound_count_after == 1


def test_turnover_mode_is_exact_where_taking_the_highest_prices_first_fails() -> None:
    contracts = [
        contract(1, price=50, max_share_count=2),
        contract(2, price=45, max_share_count=3),
        contract(3, price=45, max_share_count=3),
        contract(4, price=45, max_share_count=3),
    ]
    decision = select(contracts, workflow(rule("turnover", take=3)))
    assert set(decision.chosen_ids) == {2, 3, 4}
    assert decision.turnover == Decimal(135)


def test_turnover_mode_respects_contract_groups_exactly() -> None:
    # Company 1 has two contracts in different groups; groups span companies.
    contracts = [
        contract(1, company_id=1, contract_group_id=100, price=90),
        contract(2, company_id=1, contract_group_id=200, price=80),
        contract(3, company_id=2, contract_group_id=100, price=85),
        contract(4, company_id=3, contract_group_id=200, price=10),
    ]
    decision = select(contracts, workflow(rule("turnover", take=3)))
    # {1,4}=100, {2,3}=165, {3,4}=95, {1}: best two-set is {2,3}; three would repeat a group.
    assert set(decision.chosen_ids) == {2, 3}


def test_lead_count_mode_maximises_number_of_outbound_leads() -> None:
    contracts = [
        contract(1, price=500, max_share_count=1),
        contract(2, price=10, max_share_count=3),
        contract(3, price=10, max_share_count=3),
        contract(4, price=10, max_share_count=3),
    ]
    decision = select(contracts, workflow(rule("lead_count", take=5)))
    assert set(decision.chosen_ids) == {2, 3, 4}


def test_lead_count_mode_breaks_ties_by_turnover() -> None:
    contracts = [contract(1, price=10), contract(2, price=30), contract(3, price=20)]
    decision = select(contracts, workflow(rule("lead_count", take=2)))
    assert set(decision.chosen_ids) == {2, 3}


def _top_everywhere(cid: int, **fields: Any) -> ContractSnapshot:
    # First in every mode's order: best QS and price, never received and oldest, nearest,
    # a trial contract.
    return contract(
        cid,
        quality_score=10.0,
        price=1000,
        trial=True,
        created_at=NOW - timedelta(days=999),
        locations=(LocationPoint(*UTRECHT),),
        **fields,
    )


@pytest.mark.parametrize("mode", list(SelectionMode))
def test_every_rule_considers_max_share_count(mode: SelectionMode) -> None:
    existing = lead(outbound_count=1, holder_max_share_counts=(5,))
    contracts = [
        _top_everywhere(1, max_share_count=1),
        contract(2, max_share_count=2, locations=(AMSTERDAM,)),
        contract(3, max_share_count=2, locations=(ROTTERDAM,)),
    ]
    decision = select(contracts, workflow(rule(mode, take=3)), existing)
    assert reason_of(decision, 1) == Reason.SHARE_COUNT_EXCEEDED
    assert len(decision.chosen) == 1  # one more makes 2; a second would break max_share_count 2
    assert decision.outbound_count_after == 2


@pytest.mark.parametrize("mode", list(SelectionMode))
def test_exclusive_contract_stays_exclusive(mode: SelectionMode) -> None:
    exclusive = lead(outbound_count=1, holder_max_share_counts=(1,))
    decision = select([contract(1), contract(2)], workflow(rule(mode, take=2)), exclusive)
    assert decision.chosen == ()
    assert decision.reason == Reason.SHARE_COUNT_EXCEEDED


@pytest.mark.parametrize("mode", list(SelectionMode))
def test_new_exclusive_contract_is_chosen_alone(mode: SelectionMode) -> None:
    contracts = [_top_everywhere(1, max_share_count=1), contract(2), contract(3)]
    decision = select(contracts, workflow(rule(mode, take=3)))
    if 1 in decision.chosen_ids:
        assert decision.chosen_ids == (1,)
    assert decision.outbound_count_after <= min(
        c.max_share_count for c in contracts if c.id in decision.chosen_ids
    )


@pytest.mark.parametrize(
    ("mode", "placing"),
    [
        ("qs", {"quality_score": 6.0}),
        ("round_robin", {"last_outbound_at": NOW - timedelta(days=1)}),
        ("distance", {"locations": (AMSTERDAM,)}),
        ("free_trial", {"trial": True}),
    ],
)
def test_equal_contracts_sorted_by_qs_then_price(mode: str, placing: dict[str, Any]) -> None:
    qs = {1: 5.0, 2: 7.0, 3: 7.0} if mode != "qs" else {1: 6.0, 2: 6.0, 3: 6.0}
    contracts = [
        contract(1, price=90, **{"quality_score": qs[1], **placing}),
        contract(2, price=10, **{"quality_score": qs[2], **placing}),
        contract(3, price=20, **{"quality_score": qs[3], **placing}),
    ]
    decision = select(contracts, workflow(rule(mode, take=3)))
    expected = (3, 2, 1) if mode != "qs" else (1, 3, 2)
    assert decision.chosen_ids == expected


def test_total_selection_minimums_unmet_distributes_nothing() -> None:
    contracts = [contract(1), contract(2)]
    decision = select(contracts, workflow(rule("qs", take=5), min_contracts=3))
    assert decision.chosen == ()
    assert decision.reason == Reason.MIN_CONTRACTS_NOT_REACHED
    assert reason_of(decision, 1) == Reason.TOTAL_MINIMUMS_NOT_REACHED
    assert decision.outbound_count_after == decision.outbound_count_before


def test_total_min_turnover_unmet_distributes_nothing() -> None:
    contracts = [contract(1, price=20), contract(2, price=25)]
    decision = select(contracts, workflow(rule("qs", take=5), min_turnover=50))
    assert decision.chosen == ()
    assert decision.reason == Reason.MIN_TURNOVER_NOT_REACHED


def test_total_minimums_reached_distributes() -> None:
    contracts = [contract(1, price=20), contract(2, price=30)]
    decision = select(contracts, workflow(rule("qs", take=5), min_contracts=2, min_turnover=50))
    assert set(decision.chosen_ids) == {1, 2}
    assert decision.reason is None and decision.distributed


def test_max_multiplication_always_respected() -> None:
    existing = lead(outbound_count=1, holder_max_share_counts=(9,))
    contracts = [contract(i, max_share_count=9) for i in range(1, 7)]
    wf = workflow(
        rule("qs", take=5, position=1), rule("turnover", take=5, position=2), max_multiplication=2
    )
    decision = select(contracts, wf, existing)
    assert len(decision.chosen) == 1
    assert decision.outbound_count_after == 2
    assert decision.rules[1].reason == Reason.MULTIPLICATION_REACHED
    others = [reason_of(decision, i) for i in range(1, 7) if i not in decision.chosen_ids]
    assert set(others) == {Reason.MULTIPLICATION_REACHED}


def test_one_company_gets_the_lead_at_most_once() -> None:
    contracts = [contract(1, company_id=5, price=50), contract(2, company_id=5, price=40)]
    decision = select(contracts, workflow(rule("qs", take=2)))
    assert decision.chosen_ids == (1,)
    assert reason_of(decision, 2) == Reason.COMPANY_ALREADY_SELECTED


def test_contract_group_gets_the_lead_only_once() -> None:
    contracts = [
        contract(1, contract_group_id=9, price=50),
        contract(2, contract_group_id=9, price=40),
        contract(3, price=30),
    ]
    decision = select(contracts, workflow(rule("qs", take=3)))
    assert decision.chosen_ids == (1, 3)
    grouped = lead(received_group_ids=frozenset({9}))
    assert contract_eligibility(contracts[1], grouped, NOW) == Reason.ALREADY_RECEIVED


def test_later_rule_does_not_pick_a_company_an_earlier_rule_chose() -> None:
    contracts = [contract(1, company_id=5, quality_score=9.0), contract(2, company_id=5)]
    wf = workflow(rule("qs", take=1, position=1), rule("round_robin", take=1, position=2))
    decision = select(contracts, wf)
    assert decision.chosen_ids == (1,)
    assert reason_of(decision, 2) == Reason.COMPANY_ALREADY_SELECTED


# --------------------------------------------------------------------------- eligibility


@pytest.mark.parametrize(
    ("fields", "lead_fields", "expected"),
    [
        ({"active": False}, {}, Reason.INACTIVE),
        ({"paused": True}, {}, Reason.PAUSED),
        ({"starts": date(2025, 3, 6)}, {}, Reason.OUT_OF_DATES),
        ({"ends": date(2025, 3, 4)}, {}, Reason.OUT_OF_DATES),
        ({"starts": date(2025, 3, 5), "ends": date(2025, 3, 5)}, {}, None),
        ({"campaign": "roofing"}, {}, Reason.OTHER_CAMPAIGN),
        ({"company_id": 7}, {"received_company_ids": frozenset({7})}, Reason.ALREADY_RECEIVED),
        ({"max_share_count": 1}, {"outbound_count": 1}, Reason.SHARE_COUNT_EXCEEDED),
        (
            {"max_share_count": 5},
            {"outbound_count": 1, "holder_max_share_counts": (1,)},
            Reason.SHARE_COUNT_EXCEEDED,
        ),
        ({"caps": CapLimits(day=2), "used": CapUsage(day=2)}, {}, Reason.CAP_REACHED),
        ({"caps": CapLimits(week=9), "used": CapUsage(day=0, week=9)}, {}, Reason.CAP_REACHED),
        ({"caps": CapLimits(month=4), "used": CapUsage(month=3)}, {}, None),
        (
            {
                "caps": CapLimits(month_budget=Decimal(100)),
                "used": CapUsage(month_spent=Decimal(95)),
            },
            {},
            Reason.BUDGET_REACHED,
        ),
        ({"max_lead_age": timedelta(minutes=30)}, {}, Reason.LEAD_TOO_OLD),
        ({"min_lead_score": 50.0}, {"score": 49.0}, Reason.SCORE_TOO_LOW),
        ({"min_lead_score": 50.0}, {"score": None}, Reason.SCORE_TOO_LOW),
        ({"min_lead_score": 50.0}, {"score": 50.0}, None),
        ({"radius_km": 20.0, "locations": (ROTTERDAM,)}, {}, Reason.OUT_OF_SERVICE_AREA),
        ({"radius_km": 20.0, "locations": (ROTTERDAM, AMERSFOORT)}, {}, None),
        (
            {"radius_km": 500.0, "locations": (ROTTERDAM,)},
            {"latitude": None, "longitude": None},
            Reason.NO_COORDINATES,  # nobody knows where the lead is: not "out of area"
        ),
        ({"radius_km": 500.0}, {}, Reason.OUT_OF_SERVICE_AREA),
        ({"locations": (GRONINGEN,)}, {}, None),
    ],
)
def test_contract_eligibility_reason_codes(
    fields: dict[str, Any], lead_fields: dict[str, Any], expected: Reason | None
) -> None:
    assert contract_eligibility(contract(1, **fields), lead(**lead_fields), NOW) == expected


def test_service_area_boundary_is_decided_by_geodesic_distance() -> None:
    point = geodesic(kilometers=50).destination(UTRECHT, 37)
    location = LocationPoint(point.latitude, point.longitude)
    exact = geodesic(UTRECHT, (location.lat, location.lon)).km
    inside = contract(1, locations=(location,), radius_km=exact + 1e-6)
    outside = contract(2, locations=(location,), radius_km=exact - 1e-6)
    assert contract_eligibility(inside, lead(), NOW) is None
    assert contract_eligibility(outside, lead(), NOW) == Reason.OUT_OF_SERVICE_AREA


def test_delivery_schedule_accepts_leads_only_in_its_hours_and_time_zone() -> None:
    # Wednesday 12:00 UTC is 13:00 in Amsterdam.
    office = DeliverySchedule(
        timezone="Europe/Amsterdam", intervals=(WeeklyInterval(2, time(9), time(13)),)
    )
    late = DeliverySchedule(
        timezone="Europe/Amsterdam", intervals=(WeeklyInterval(2, time(12, 59), time(13, 1)),)
    )
    assert contract_eligibility(contract(1, delivery_schedule=office), lead(), NOW) == (
        Reason.OUTSIDE_DELIVERY_HOURS
    )
    assert contract_eligibility(contract(1, delivery_schedule=late), lead(), NOW) is None


def test_delivery_schedule_interval_may_run_past_midnight() -> None:
    night = DeliverySchedule(timezone="UTC", intervals=(WeeklyInterval(1, time(22), time(6)),))
    tuesday_late = datetime(2025, 3, 4, 23, 0, tzinfo=UTC)
    wednesday_early = datetime(2025, 3, 5, 5, 59, tzinfo=UTC)
    wednesday_six = datetime(2025, 3, 5, 6, 0, tzinfo=UTC)
    assert night.is_open(tuesday_late)
    assert night.is_open(wednesday_early)
    assert not night.is_open(wednesday_six)
    whole_day = DeliverySchedule(timezone="UTC", intervals=(WeeklyInterval(2, time(0), time(0)),))
    assert whole_day.is_open(NOW) and not whole_day.is_open(tuesday_late)


def test_eligible_contracts_lists_only_eligible_ones_in_id_order() -> None:
    contracts = [contract(3), contract(1, active=False), contract(2)]
    assert [c.id for c in eligible_contracts(lead(), contracts, NOW)] == [2, 3]


def test_remaining_caps_and_budget() -> None:
    c = contract(
        1,
        caps=CapLimits(day=5, month=20, week_budget=Decimal(100)),
        used=CapUsage(day=2, month=19, week_spent=Decimal(30)),
    )
    assert c.remaining_count() == 1
    assert c.remaining_budget() == Decimal(70)
    assert contract(2).remaining_count() is None and contract(2).remaining_budget() is None


def test_bounding_box_holds_the_service_area_for_the_area_prefilter() -> None:
    box = bounding_box(*UTRECHT, 50)
    assert box.contains(*UTRECHT)
    east = geodesic(kilometers=49.9).destination(UTRECHT, 90)
    far = geodesic(kilometers=60).destination(UTRECHT, 0)
    assert box.contains(east.latitude, east.longitude)
    assert not box.contains(far.latitude, far.longitude)
    assert box.lat_max - box.lat_min < 1.0


def test_bounding_box_spans_every_longitude_near_a_pole_or_the_antimeridian() -> None:
    assert bounding_box(89.8, 10.0, 50).lon_min == -180.0
    near_dateline = bounding_box(0.0, 179.9, 50)
    assert (near_dateline.lon_min, near_dateline.lon_max) == (-180.0, 180.0)


# --------------------------------------------------------------------------- explanation


def test_decision_explains_every_contract_with_reason_and_rank() -> None:
    contracts = [
        contract(4, quality_score=1.0),
        contract(2, active=False),
        contract(1, quality_score=9.0),
        contract(3, quality_score=5.0),
    ]
    decision = select(contracts, workflow(rule("qs", take=1)))
    lines = decision.candidates
    assert [line.contract_id for line in lines] == [1, 3, 4, 2]
    assert [line.reason for line in lines] == [
        None,
        Reason.TAKE_REACHED,
        Reason.TAKE_REACHED,
        Reason.INACTIVE,
    ]
    assert [line.rank for line in lines] == [1, 2, 3, None]
    assert {line.rule_position for line in lines[:3]} == {1}
    assert decision.explanation.reason_counts() == {"chosen": 1, "take_reached": 2, "inactive": 1}


def test_rule_outcomes_record_what_each_rule_did() -> None:
    contracts = [contract(1, price=30), contract(2, price=20), contract(3, price=10)]
    wf = workflow(rule("qs", take=1, position=2), rule("turnover", take=1, position=1))
    decision = select(contracts, wf)
    assert [r.position for r in decision.rules] == [1, 2]
    assert decision.rules[0].chosen_ids == (1,) and decision.rules[0].mode == "turnover"
    assert decision.rules[1].chosen_ids == (2,)
    assert [c.rule_position for c in decision.chosen] == [1, 2]
    assert decision.turnover == Decimal(50)


def test_no_eligible_contracts_is_explained() -> None:
    decision = select([contract(1, paused=True)], workflow(rule("qs")))
    assert decision.reason == Reason.NO_ELIGIBLE_CONTRACTS
    assert decision.rules[0].reason == Reason.NO_CANDIDATES


def test_engine_rejects_naive_datetimes_and_duplicate_contract_ids() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        select([contract(1)], workflow(rule("qs")), now=datetime(2025, 3, 5, 12))
    with pytest.raises(ValueError, match="passed twice"):
        select([contract(1), contract(1)], workflow(rule("qs")))


def test_selection_does_not_depend_on_input_order() -> None:
    rng = random.Random(5)
    contracts = [
        contract(i, price=rng.randint(1, 9), quality_score=float(rng.randint(1, 3)))
        for i in range(1, 30)
    ]
    shuffled = contracts[:]
    rng.shuffle(shuffled)
    for mode in SelectionMode:
        wf = workflow(rule(mode, take=4))
        assert select(contracts, wf, seed=3).chosen_ids == select(shuffled, wf, seed=3).chosen_ids


def test_snapshot_key_fields_are_not_constructor_arguments() -> None:
    with pytest.raises(TypeError):
        ContractSnapshot(  # type: ignore[call-arg]
            id=1,
            company_id=1,
            campaign=CAMPAIGN,
            price=Decimal(1),
            max_share_count=1,
            created_at=NOW,
            qs_key=(0.0,),
        )


def test_workflow_snapshot_defaults() -> None:
    wf = WorkflowSnapshot(max_multiplication=None)
    assert wf.rules == () and wf.min_contracts == 0 and wf.min_turnover is None
    assert remaining_room(lead(), wf) > 10**9


# --------------------------------------------------------------------------- precomputed invariants


def test_cap_verdict_is_recomputed_when_a_snapshot_is_replaced():
    from dataclasses import replace

    full = contract(1, caps=CapLimits(day=2), used=CapUsage(day=2))
    assert contract_eligibility(full, lead(), NOW) is Reason.CAP_REACHED
    fresh = replace(full, used=CapUsage(day=1))
    assert contract_eligibility(fresh, lead(), NOW) is None
    spent = replace(
        fresh, caps=CapLimits(day_budget=Decimal("15")), used=CapUsage(day_spent=Decimal("6"))
    )
    assert contract_eligibility(spent, lead(), NOW) is Reason.BUDGET_REACHED
    # The earlier checks keep their precedence over the precomputed cap verdict.
    assert contract_eligibility(replace(full, paused=True), lead(), NOW) is Reason.PAUSED


def test_service_area_box_prefilter_agrees_with_the_geodesic():
    rng = random.Random(7)
    for _ in range(300):
        radius = rng.uniform(1, 80)
        loc = LocationPoint(rng.uniform(50.8, 53.5), rng.uniform(3.4, 7.2))
        c = contract(1, radius_km=radius, locations=(loc,))
        # Points around the disc's edge, where the box and the geodesic are closest.
        bearing = rng.uniform(0, 360)
        far = geodesic(kilometers=radius * rng.uniform(0.98, 1.02)).destination(
            (loc.lat, loc.lon), bearing
        )
        expected = geodesic((far.latitude, far.longitude), (loc.lat, loc.lon)).km <= radius
        got = contract_eligibility(c, lead(latitude=far.latitude, longitude=far.longitude), NOW)
        assert (got is None) == expected
        assert got in (None, Reason.OUT_OF_SERVICE_AREA)
