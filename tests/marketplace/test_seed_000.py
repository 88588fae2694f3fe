"""One test per sentence of seed 000 (the lead marketplace), through the services and the
database. Each docstring quotes the sentence it checks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from distribution import services
from distribution.errors import MarketplaceError
from distribution.models import DistributionAttempt, DistributionWindow, OutboundLead
from leads.models import Lead
from tests.factories import LeadFactory
from tests.factories.marketplace import GRONINGEN, ROTTERDAM, LocationFactory

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db
MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_distribution_is_done_manually_or_automatically(workflow, contract, new_lead, manager):
    """Distribution can be done in 2 ways; either manually or automatically."""
    workflow(rules=[("qs", 1)])
    best = contract(name="best", quality_score=9)
    other = contract(name="other", quality_score=1)
    automatic, manual = new_lead(), new_lead()
    arrive(automatic)
    services.lead_distribute_manually(lead_id=manual.pk, contract_ids=[other.pk], actor=manager)
    assert OutboundLead.objects.get(lead=automatic).method == "auto"
    assert sold_to(automatic) == [best.name]
    assert OutboundLead.objects.get(lead=manual).method == "manual"
    assert sold_to(manual) == [other.name]


def test_cherry_picking_hands_an_inbound_lead_to_a_client(contract, new_lead, manager):
    """Another way to get a lead to a client is by cherry-picking an inbound lead."""
    buyer = contract(name="buyer", price=Decimal("33.00"))
    lead = new_lead()
    outbound = services.lead_cherry_pick(lead_id=lead.pk, contract_id=buyer.pk, actor=manager)
    assert (outbound.method, outbound.price, outbound.actor) == (
        "cherry_pick",
        Decimal("33.00"),
        manager,
    )
    assert sold_to(lead) == ["buyer"]


def test_automatic_distribution_needs_a_campaign(workflow, contract, new_lead):
    """To automatically distribute your lead, it has to have a campaign."""
    workflow(rules=[("qs", 5)])
    contract()
    lead = new_lead(campaign=None)
    attempt = services.lead_distribute_marketplace(lead_id=lead.pk)
    assert attempt is not None and attempt.outcome == "no_campaign"
    assert not OutboundLead.objects.filter(lead=lead).exists()
    with_campaign = new_lead()
    assert arrive(with_campaign).outcome == "distributed"


def test_leads_without_campaign_can_only_be_distributed_manually_or_cherry_picked(
    workflow, contract, new_lead, manager
):
    """Leads without campaign can only be manually distributed or cherry-picked."""
    workflow(rules=[("qs", 5)], mode="window")
    first, second = contract(name="first"), contract(name="second")
    lead = new_lead(campaign=None)
    with pytest.raises(MarketplaceError) as refused:
        services.window_open(lead_id=lead.pk, actor=manager)
    assert refused.value.code == "no_campaign"
    services.lead_distribute_manually(lead_id=lead.pk, contract_ids=[first.pk], actor=manager)
    services.lead_cherry_pick(lead_id=lead.pk, contract_id=second.pk, actor=manager)
    assert sorted(OutboundLead.objects.filter(lead=lead).values_list("method", flat=True)) == [
        "cherry_pick",
        "manual",
    ]


def test_workflow_distribution_options_switch_automatic_distribution_on(
    workflow, contract, new_lead
):
    """A lead can be distributed automatically by setting this in the workflow distribution
    options."""
    flow = workflow(rules=[("qs", 5)], mode="manual")
    contract()
    waiting = new_lead()
    assert arrive(waiting).outcome == "manual_workflow"
    waiting.refresh_from_db()
    assert waiting.status == "waiting" and not sold_to(waiting)
    flow.mode = "on_arrival"
    flow.save()
    sold = new_lead()
    assert arrive(sold).outcome == "distributed"
    sold.refresh_from_db()
    assert sold.status == "distributed"


def test_on_arrival_mode_distributes_only_when_the_lead_comes_in(workflow, contract, new_lead):
    """…the option to only distribute when the inbound lead is coming in…"""
    workflow(rules=[("qs", 5)], mode="on_arrival")
    lead = new_lead()
    assert arrive(lead).outcome == "no_eligible_contracts"
    contract(name="late")  # a contract that arrives after the lead
    services.windows_recheck_due(now=datetime.now(UTC) + timedelta(days=1))
    assert sold_to(lead) == []
    assert not DistributionWindow.objects.filter(lead=lead).exists()


def test_window_mode_checks_periodically_for_new_contracts(workflow, contract, new_lead):
    """…or also check periodically if there are new contracts available for this inbound
    lead (a so-called window)."""
    workflow(
        rules=[("qs", 5)],
        mode="window",
        window_duration=timedelta(hours=2),
        recheck_every=timedelta(minutes=10),
    )
    with time_machine.travel(MONDAY_NOON, tick=False):
        lead = new_lead()
        assert arrive(lead).outcome == "no_eligible_contracts"
        contract(name="late")
    with time_machine.travel(MONDAY_NOON + timedelta(minutes=10), tick=False):
        counts = services.windows_recheck_due()
    assert counts == {"distributed": 1}
    assert sold_to(lead) == ["late"]
    assert DistributionWindow.objects.get(lead=lead).status == "active"


def test_a_lead_in_a_window_can_be_paused_edited_or_stopped(workflow, contract, new_lead, manager):
    """If an outbound lead is in an auto-distribution window, you can pause, edit or stop the
    auto-distribution."""
    workflow(
        rules=[("qs", 5)],
        mode="window",
        window_duration=timedelta(hours=1),
        recheck_every=timedelta(minutes=5),
    )
    with time_machine.travel(MONDAY_NOON, tick=False):
        lead = new_lead()
        arrive(lead)
        window = DistributionWindow.objects.get(lead=lead)
        services.window_pause(window_id=window.pk, actor=manager)
        contract(name="new")
    with time_machine.travel(MONDAY_NOON + timedelta(minutes=30), tick=False):
        services.windows_recheck_due()
        assert sold_to(lead) == []  # paused: no recheck
        services.window_edit(
            window_id=window.pk,
            actor=manager,
            ends_at=MONDAY_NOON + timedelta(hours=3),
            every=timedelta(minutes=15),
        )
        services.window_resume(window_id=window.pk, actor=manager)
        services.windows_recheck_due()
        assert sold_to(lead) == ["new"]
        services.window_stop(window_id=window.pk, actor=manager)
    window.refresh_from_db()
    assert (window.status, window.ends_at, window.every) == (
        "stopped",
        MONDAY_NOON + timedelta(hours=3),
        timedelta(minutes=15),
    )


def test_a_lead_outside_a_window_can_be_distributed_manually_or_given_a_window(
    workflow, contract, new_lead, manager
):
    """If an outbound lead is not in an auto-distribution window, you can manually
    distribute or add an auto-distribution window."""
    workflow(rules=[("qs", 1)], mode="on_arrival")
    first = contract(name="first", quality_score=9)
    second = contract(name="second", quality_score=5)
    lead = new_lead()
    arrive(lead)  # sold to "first", no window
    window = services.window_open(
        lead_id=lead.pk, actor=manager, duration=timedelta(hours=1), every=timedelta(minutes=5)
    )
    assert sold_to(lead) == ["first", "second"]  # the window's first check sold it again
    with pytest.raises(MarketplaceError) as in_window:
        services.lead_distribute_manually(lead_id=lead.pk, contract_ids=[second.pk], actor=manager)
    assert in_window.value.code == "window_open"
    services.window_stop(window_id=window.pk, actor=manager)
    third = contract(name="third")
    services.lead_distribute_manually(lead_id=lead.pk, contract_ids=[third.pk], actor=manager)
    assert sold_to(lead) == ["first", "second", "third"]
    assert first.pk != second.pk


@pytest.mark.parametrize("mode", ["on_arrival", "window"])
def test_contract_selection_rules_pick_the_companies_in_every_mode(
    workflow, contract, new_lead, mode
):
    """In all modes of distribution, you have to select the rule(s) by which we pick the
    right companies for you, they are called Contract selection rules."""
    workflow(rules=[("qs", 1), ("free_trial", 1)], mode=mode)
    contract(name="top", quality_score=9)
    contract(name="trial", quality_score=1, trial=True, price=Decimal("0"))
    contract(name="middle", quality_score=5)
    lead = new_lead()
    arrive(lead)
    assert sold_to(lead) == ["top", "trial"]


def test_take_selects_at_most_that_many_contracts(workflow, contract, new_lead):
    """Take: Select at most this amount of contracts."""
    workflow(rules=[("qs", 2)])
    for n in range(5):
        contract(name=f"c{n}", quality_score=n)
    lead = new_lead()
    attempt = arrive(lead)
    assert sold_to(lead) == ["c4", "c3"]
    assert {c["contract"]: c["reason"] for c in attempt.candidates}["c2"] == "take_reached"


def test_a_rule_below_its_min_turnover_is_skipped(workflow, contract, new_lead):
    """Min turnover by rule: A rule is skipped if the minimum value is not reached."""
    workflow(rules=[("qs", 1, Decimal("50")), ("qs", 1, Decimal("5"))])
    contract(name="cheap", price=Decimal("10"), quality_score=9)
    lead = new_lead()
    attempt = arrive(lead)
    first, second = attempt.rules_tried[0], attempt.rules_tried[1]
    assert first["skipped"] and first["reason"] == "rule_skipped_min_turnover"
    assert not second["skipped"] and second["chosen"] == ["cheap"]
    assert sold_to(lead) == ["cheap"]


def test_qs_mode_sorts_by_quality_score_then_highest_price(workflow, contract, new_lead):
    """QS Sorts the contracts by Quality Score, when multiple contracts have the same
    quality score, the contract with the highest price is selected."""
    workflow(rules=[("qs", 2)])
    contract(name="qs7", quality_score=7, price=Decimal("90"))
    contract(name="qs8-cheap", quality_score=8, price=Decimal("10"))
    contract(name="qs8-dear", quality_score=8, price=Decimal("20"))
    lead = new_lead()
    arrive(lead)
    assert sold_to(lead) == ["qs8-dear", "qs8-cheap"]


def test_random_mode_sorts_the_contracts_randomly(workflow, contract, new_lead, monkeypatch):
    """Random Sorts the contracts completely random.

    Not a rotation (round robin would also spread the leads evenly) and not the QS order:
    with each lead's draw seeded (deterministic), over 120 leads the winner is uniform
    (chi-square), follows the previous winner in no fixed pattern (a rotation makes 6
    distinct (previous, next) pairs and never repeats a winner back to back) and the full
    ranked order of the 6 contracts takes many of its 720 permutations (a rotation: 6)."""
    import random
    from collections import Counter

    from distribution.services.marketplace import sale

    seeds: dict[int, int] = {}  # lead id → its seed (the lock rounds re-draw the same)
    monkeypatch.setattr(
        sale, "_rng", lambda lead_id, now: random.Random(seeds.setdefault(lead_id, len(seeds)))
    )
    workflow(rules=[("random", 1)], max_multiplication=1)
    names = [contract(name=f"c{n}", quality_score=n).name for n in range(6)]
    winners: list[str] = []
    orders: set[tuple[str, ...]] = set()
    for _ in range(120):
        lead = new_lead()
        arrive(lead)
        (won,) = sold_to(lead)
        winners.append(won)
        lines = DistributionAttempt.objects.filter(lead=lead).latest("id").candidates
        orders.add(tuple(c["contract"] for c in sorted(lines, key=lambda c: c["rank"])))
    counts = Counter(winners)
    expected = len(winners) / len(names)
    chi2 = sum((counts[n] - expected) ** 2 / expected for n in names)
    assert chi2 < 20.5, counts  # uniform: p > 0.001 with 5 degrees of freedom
    pairs = Counter(itertools.pairwise(winners))
    assert len(pairs) > 18, pairs  # many successors per winner, not one fixed next
    assert sum(n for (x, y), n in pairs.items() if x == y) >= 5  # the same one twice in a row
    assert len(orders) > 60  # whole orders drawn afresh, not shifted


def test_round_robin_mode_sorts_by_last_outbound_lead_or_creation_date(
    workflow, contract, new_lead
):
    """Round Robin Sorts the contracts by last outbound lead received date. If the contract
    did not receive any leads, the date of contract creating is used."""
    workflow(rules=[("round_robin", 1)], max_multiplication=1)
    base = datetime.now(UTC) - timedelta(days=10)
    contract(name="old", created_at=base)
    contract(name="older", created_at=base - timedelta(days=1))
    contract(
        name="recently-sold",
        created_at=base - timedelta(days=5),
        last_outbound_at=base + timedelta(days=1),
    )
    order = []
    for _ in range(3):
        lead = new_lead()
        arrive(lead)
        order += sold_to(lead)
    assert order == ["older", "old", "recently-sold"]


def test_distance_mode_sorts_by_nearest_location_of_the_account(workflow, contract, new_lead):
    """Distance Sorts the contracts by nearest distance. Distance is calculated by the
    account locations of a contract and the service area Geo Field of the inbound lead."""
    workflow(rules=[("distance", 2)])
    far = contract(name="groningen")
    LocationFactory(company=far.company, latitude=GRONINGEN[0], longitude=GRONINGEN[1])
    near = contract(name="rotterdam-and-amsterdam")
    LocationFactory(company=near.company, latitude=ROTTERDAM[0], longitude=ROTTERDAM[1])
    LocationFactory(company=near.company, name="amsterdam")  # Amsterdam: nearest
    contract(name="no-location")
    lead = new_lead()  # in Amsterdam
    attempt = arrive(lead)
    assert sold_to(lead) == ["rotterdam-and-amsterdam", "groningen"]
    lines = {c["contract"]: c for c in attempt.candidates}
    assert lines["rotterdam-and-amsterdam"]["distance_km"] < 1
    assert 140 < lines["groningen"]["distance_km"] < 160


def test_free_trial_mode_puts_trial_contracts_first_then_paid_by_price(
    workflow, contract, new_lead
):
    """Free Trial Sorts the contracts first by trial contracts and then the paid contracts
    based on price."""
    workflow(rules=[("free_trial", 3)])
    contract(name="paid-low", price=Decimal("10"), quality_score=9)
    contract(name="paid-high", price=Decimal("30"), quality_score=1)
    contract(name="trial", price=Decimal("0"), trial=True, quality_score=1)
    lead = new_lead()
    arrive(lead)
    assert sold_to(lead) == ["trial", "paid-high", "paid-low"]


def test_turnover_mode_maximises_the_turnover(workflow, contract, new_lead):
    """Turnover Maximizes the turnover"""
    workflow(rules=[("turnover", 3)])
    # Greedy by price would take the exclusive 50 alone; 3 shared contracts turn over 60.
    contract(name="exclusive-50", price=Decimal("50"), max_share_count=1)
    for n in range(3):
        contract(name=f"shared-20-{n}", price=Decimal("20"), max_share_count=3)
    lead = new_lead()
    arrive(lead)
    assert sorted(sold_to(lead)) == ["shared-20-0", "shared-20-1", "shared-20-2"]


def test_lead_count_mode_maximises_the_outbound_lead_count(workflow, contract, new_lead):
    """Lead count Maximizes the outbound lead count"""
    workflow(rules=[("lead_count", 5)])
    contract(name="exclusive", price=Decimal("90"), quality_score=9, max_share_count=1)
    for n in range(3):
        contract(name=f"shared-{n}", price=Decimal("5"), max_share_count=3)
    lead = new_lead()
    arrive(lead)
    assert sorted(sold_to(lead)) == ["shared-0", "shared-1", "shared-2"]


def test_every_rule_considers_each_contracts_max_share_count(workflow, contract, new_lead):
    """In every rule, the max share count of each contract is considered."""
    workflow(rules=[("qs", 1), ("qs", 3)])
    contract(name="exclusive", quality_score=9, max_share_count=1)
    contract(name="pair", quality_score=8, max_share_count=2)
    contract(name="shared", quality_score=1, max_share_count=5)
    lead = new_lead()
    arrive(lead)
    # rule 1 takes the exclusive contract; rule 2 may add none (the lead is exclusive now)
    assert sold_to(lead) == ["exclusive"]
    other = new_lead()
    OutboundLead.objects.create(
        lead=other, contract=contract(name="holder", max_share_count=2), method="manual", price=1
    )
    arrive(other)
    # already shared once with a 2-share holder: only one more, and never the exclusive one
    assert sold_to(other) == ["holder", "pair"]


def test_equally_placed_contracts_are_sorted_by_qs_and_price(workflow, contract, new_lead):
    """If there are equally placed contracts, they are then further sorted by QS and
    Price."""
    workflow(rules=[("free_trial", 2)])
    contract(name="trial-qs3", trial=True, price=Decimal("0"), quality_score=3)
    contract(name="trial-qs7", trial=True, price=Decimal("0"), quality_score=7)
    contract(name="trial-qs7-pricier", trial=True, price=Decimal("1"), quality_score=7)
    lead = new_lead()
    arrive(lead)
    assert sold_to(lead) == ["trial-qs7-pricier", "trial-qs7"]


@pytest.mark.parametrize(
    ("minimums", "sold"),
    [
        ({"min_contracts": 3}, False),
        ({"min_turnover": Decimal("25")}, False),
        ({"min_contracts": 2, "min_turnover": Decimal("20")}, True),
    ],
)
def test_auto_distribution_is_not_done_below_the_total_selection_minimums(
    workflow, contract, new_lead, minimums, sold
):
    """Total selection minimums: auto distribution is not done when the minimums are not
    reached"""
    workflow(rules=[("qs", 5)], **minimums)
    contract(price=Decimal("10"))
    contract(price=Decimal("10"))
    lead = new_lead()
    attempt = arrive(lead)
    assert bool(sold_to(lead)) is sold
    if not sold:
        assert attempt.outcome in ("min_contracts_not_reached", "min_turnover_not_reached")
        lead.refresh_from_db()
        assert lead.status == "waiting"


def test_the_maximum_multiplication_is_always_respected(workflow, contract, new_lead, manager):
    """The maximum multiplication set in the workflow is always respected."""
    workflow(rules=[("qs", 5)], max_multiplication=2, mode="window")
    contracts = [contract(name=f"c{n}", quality_score=n) for n in range(4)]
    lead = new_lead()
    arrive(lead)
    assert len(sold_to(lead)) == 2
    window = DistributionWindow.objects.get(lead=lead)
    assert (window.status, window.close_reason) == ("finished", "multiplication_reached")
    with pytest.raises(MarketplaceError):
        services.window_open(lead_id=lead.pk, actor=manager)  # full: nothing to check
    attempt = services.lead_distribute_manually(
        lead_id=lead.pk, contract_ids=[contracts[0].pk], actor=manager
    )
    assert attempt.outcome == "refused"
    assert attempt.candidates[0]["reason"] == "multiplication_reached"
    assert len(sold_to(lead)) == 2


def test_manual_distribution_lets_a_manager_influence_the_distribution(
    workflow, contract, new_lead, manager
):
    """If you want to influence the distribution you can select manual distribution."""
    workflow(rules=[("qs", 1)], mode="manual")
    contract(name="best", quality_score=9)
    chosen = contract(name="chosen-by-hand", quality_score=1)
    lead = new_lead()
    arrive(lead)
    attempt = services.lead_distribute_manually(
        lead_id=lead.pk, contract_ids=[chosen.pk], actor=manager
    )
    assert attempt.outcome == "distributed" and attempt.actor == manager
    assert sold_to(lead) == ["chosen-by-hand"]
    lead.refresh_from_db()
    assert lead.status == "distributed"


def test_cherry_picked_leads_do_not_count_as_distributed(contract, new_lead, manager):
    """Cherry-picked outbound leads do not count as distributed leads…"""
    lead = new_lead()
    services.lead_cherry_pick(lead_id=lead.pk, contract_id=contract().pk, actor=manager)
    lead.refresh_from_db()
    assert lead.status == "pending"


def test_cherry_picked_leads_do_not_affect_distribution(workflow, contract, new_lead, manager):
    """…and will therefore not affect distribution…"""
    workflow(rules=[("qs", 3)], max_multiplication=1)
    picked_for = contract(name="phone-deal", quality_score=1)
    contract(name="auto", quality_score=9)
    lead = new_lead()
    services.lead_cherry_pick(lead_id=lead.pk, contract_id=picked_for.pk, actor=manager)
    arrive(lead)  # the multiplication of 1 still has room: the cherry-pick is not counted
    assert sold_to(lead, method="auto") == ["auto"]


def test_cherry_picked_leads_are_not_affected_by_distribution(
    workflow, contract, new_lead, manager
):
    """…or are affected by distribution."""
    workflow(rules=[("qs", 3)], max_multiplication=1)
    contract(name="auto", quality_score=9, max_share_count=1)
    lead = new_lead()
    arrive(lead)  # the lead is full and exclusive
    picked = services.lead_cherry_pick(
        lead_id=lead.pk, contract_id=contract(name="deal").pk, actor=manager
    )
    arrive(lead)  # a second arrival attempt does nothing
    assert OutboundLead.objects.get(pk=picked.pk).method == "cherry_pick"
    assert sorted(sold_to(lead)) == ["auto", "deal"]


def test_cherry_picked_leads_do_not_count_towards_the_max_share_count(
    workflow, contract, new_lead, manager
):
    """They do not count towards the maximum share count…"""
    workflow(rules=[("qs", 1)])
    lead = new_lead()
    for n in range(3):
        services.lead_cherry_pick(
            lead_id=lead.pk, contract_id=contract(name=f"p{n}").pk, actor=manager
        )
    contract(name="exclusive", max_share_count=1, quality_score=9)
    arrive(lead)
    assert sold_to(lead, method="auto") == ["exclusive"]


def test_cherry_picked_leads_are_not_included_in_any_active_caps(
    workflow, contract, new_lead, manager
):
    """…and are not included in any active caps."""
    workflow(rules=[("qs", 1)])
    capped = contract(name="capped", cap_day=1, cap_month=1, budget_day=Decimal("10"))
    for _ in range(3):
        services.lead_cherry_pick(lead_id=new_lead().pk, contract_id=capped.pk, actor=manager)
    lead = new_lead()
    arrive(lead)
    assert sold_to(lead) == ["capped"]  # three cherry-picks used none of the cap
    again = new_lead()
    assert arrive(again).outcome == "no_eligible_contracts"  # the auto sale did


def test_distribution_history_shows_attempts_by_users_and_by_the_system(
    workflow, contract, new_lead, manager
):
    """In the distribution dropdown you can also see the distribution history. This will
    give you an overview of all attempted distributions, either by users or by the
    system."""
    workflow(rules=[("qs", 1)], max_multiplication=2)
    first, second = contract(quality_score=9), contract(quality_score=1)
    lead = new_lead()
    arrive(lead)
    services.lead_distribute_manually(
        lead_id=lead.pk, contract_ids=[first.pk, second.pk], actor=manager
    )
    services.lead_cherry_pick(lead_id=lead.pk, contract_id=contract().pk, actor=manager)
    history = list(DistributionAttempt.objects.filter(lead=lead).order_by("id"))
    assert [(a.trigger, a.outcome, a.actor) for a in history] == [
        ("arrival", "distributed", None),
        ("manual", "distributed", manager),  # first refused (already has it), second sold
        ("manual", "cherry_picked", manager),
    ]
    manual = history[1]
    reasons = {c["contract_id"]: c["reason"] for c in manual.candidates}
    assert reasons == {second.pk: None, first.pk: "already_received"}
    assert all(a.duration_ms >= 0 for a in history)


def test_lead_without_coordinates_or_place_says_no_coordinates(workflow, contract):
    """A lead with no coordinates and no place to look up is not sold to a contract with a
    service area, and the attempt says why: `no_coordinates` (issue 12 item 8), not "out of
    service area"."""
    workflow(rules=[("qs", 2)])
    area = contract(name="area", radius_km=50)
    LocationFactory(company=area.company)
    contract(name="nationwide")
    lead = LeadFactory(campaign=area.campaign)
    attempt = arrive(lead)
    assert sold_to(lead) == ["nationwide"]
    # explained, and counted in the attempt's summary
    lines = {c["contract"]: c for c in attempt.candidates}
    assert lines["area"]["reason"] == "no_coordinates"
    assert attempt.rules_tried[-1]["summary"]["no_coordinates"] == 1
    assert "out_of_service_area" not in attempt.rules_tried[-1]["summary"]
    assert Lead.objects.get(pk=lead.pk).status == "distributed"


def test_service_area_keeps_exactly_the_contracts_in_range(workflow, contract):
    """The bounding-box and spherical prefilters never drop a contract whose area holds the
    lead; geopy's geodesic decides at the edge."""
    workflow(rules=[("qs", 10)])
    inside = contract(name="inside-60km", radius_km=60)  # Amsterdam → Rotterdam ≈ 57 km
    LocationFactory(company=inside.company, latitude=ROTTERDAM[0], longitude=ROTTERDAM[1])
    edge = contract(name="edge-55km", radius_km=55)  # in the box, outside the circle
    LocationFactory(company=edge.company, latitude=ROTTERDAM[0], longitude=ROTTERDAM[1])
    far = contract(name="far-60km", radius_km=60)
    LocationFactory(company=far.company, latitude=GRONINGEN[0], longitude=GRONINGEN[1])
    lead = LeadFactory(campaign=inside.campaign, latitude=52.3676, longitude=4.9041)
    attempt = arrive(lead)
    assert sold_to(lead) == ["inside-60km"]
    lines = {c["contract"]: c["reason"] for c in attempt.candidates}
    assert lines == {
        "inside-60km": None,
        "edge-55km": "out_of_service_area",
        "far-60km": "out_of_service_area",
    }
    assert attempt.rules_tried[-1]["summary"]["out_of_service_area"] == 2
