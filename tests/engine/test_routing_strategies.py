"""Strategies, fallbacks and working hours, with the seeds' own sentences as test names."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from distribution.engine.routing import choose_pull, decide, next_round, turn_timestamp
from distribution.engine.types import (
    AgentMetrics,
    AgentSnapshot,
    Caps,
    Decision,
    Filter,
    Interval,
    LeadSnapshot,
    MemberSnapshot,
    PerformanceTier,
    ReceivedCounts,
    RuleSnapshot,
    ScheduleSnapshot,
)

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2024, 6, 3, 10, 0, tzinfo=AMS)  # a Monday morning
NO_CAPS = Caps()
OFFICE = ScheduleSnapshot(
    "Europe/Amsterdam", tuple(Interval(d, time(9), time(17)) for d in range(5))
)


def agent(i: int, **kw: object) -> AgentSnapshot:
    return AgentSnapshot(id=i, email=f"agent{i}@example.com", **kw)  # type: ignore[arg-type]


def member(
    i: int,
    *,
    position: int | None = None,
    weight: float = 1.0,
    active: bool = True,
    caps: Caps = NO_CAPS,
    filters: tuple[Filter, ...] = (),
    received_at: tuple[datetime, ...] = (),
    **agent_kw: object,
) -> MemberSnapshot:
    return MemberSnapshot(
        id=100 + i,
        agent=agent(i, **agent_kw),
        position=i if position is None else position,
        weight=weight,
        active=active,
        caps=caps,
        filters=filters,
        received_at=received_at,
    )


def pool(n: int) -> list[MemberSnapshot]:
    return [member(i) for i in range(1, n + 1)]


def lead(i: int = 1, **fields: object) -> LeadSnapshot:
    return LeadSnapshot(id=i, source="web", campaign=None, created_at=NOW, fields=fields)


def rule(strategy: str = "round_robin", **kw: object) -> RuleSnapshot:
    return RuleSnapshot(id=1, name="Web leads", strategy=strategy, pool_id=1, **kw)  # type: ignore[arg-type]


def emails(decision: Decision) -> list[str]:
    return [c.email for c in decision.chosen]


def reasons(decision: Decision) -> dict[str, str | None]:
    return {c.email: c.reason for c in decision.candidates}


# --- round robin (seeds 001, 003) ---------------------------------------------------------


def test_round_robin_gives_the_lead_to_the_agent_with_the_oldest_last_assignment() -> None:
    members = [
        member(1, last_turn_at=NOW - timedelta(hours=1)),
        member(2, last_turn_at=NOW - timedelta(hours=3)),
        member(3, last_turn_at=NOW - timedelta(hours=2)),
    ]
    decision = decide(rule(), lead(), members, NOW)
    assert decision.outcome == "assign"
    assert decision.status == "assigned"
    assert emails(decision) == ["agent2@example.com"]
    assert [(c.email, c.rank) for c in decision.candidates] == [
        ("agent2@example.com", 1),
        ("agent3@example.com", 2),
        ("agent1@example.com", 3),
    ]


def test_an_agent_never_assigned_comes_first() -> None:
    members = [member(1, last_turn_at=NOW - timedelta(days=300)), member(2)]
    assert emails(decide(rule(), lead(), members, NOW)) == ["agent2@example.com"]


def test_round_robin_re_offers_to_the_next_in_line_on_timeout() -> None:
    # Seed 001: "If they do not call in the alotted time, the lead is re-distributed to the
    # next person in-line from the pool."
    members = [
        member(1, last_turn_at=NOW - timedelta(hours=1)),
        member(2),
        member(3, last_turn_at=NOW - timedelta(hours=2)),
    ]
    r = rule(claim_timeout=timedelta(minutes=15))
    first = decide(r, lead(), members, NOW)
    assert first.outcome == "offer" and first.status == "offered"
    assert emails(first) == ["agent2@example.com"]
    assert first.expires_at == NOW + timedelta(minutes=15)
    assert first.offered_member_ids == {102}

    second = next_round(
        r,
        lead(),
        members,
        first.expires_at,
        offered_member_ids=first.offered_member_ids,
        round_no=first.round_no,
    )
    assert (second.outcome, second.round_no) == ("offer", 2)
    assert emails(second) == ["agent3@example.com"]
    assert second.offered_member_ids == {102, 103}
    assert reasons(second)["agent2@example.com"] == "already_offered"

    third = next_round(
        r, lead(), members, NOW, offered_member_ids=second.offered_member_ids, round_no=2
    )
    assert emails(third) == ["agent1@example.com"]

    # Seed 001: a lead that "went through all users in a pool and was not claimed" leaves
    # automatic distribution (DESIGN: default agent, else the Lead Exception queue).
    done = next_round(
        r, lead(), members, NOW, offered_member_ids=third.offered_member_ids, round_no=3
    )
    assert done.outcome == "exception"
    assert done.reason_code == "no_eligible_member"
    assert set(reasons(done).values()) == {"already_offered"}


def test_a_decliner_is_not_offered_the_lead_again() -> None:
    members = pool(2)
    r = rule(claim_timeout=timedelta(minutes=5))
    first = decide(r, lead(), members, NOW)
    declined = next_round(
        r,
        lead(),
        members,
        NOW + timedelta(minutes=1),
        offered_member_ids=first.offered_member_ids,
        round_no=1,
    )
    assert emails(declined) != emails(first)
    assert declined.expires_at == NOW + timedelta(minutes=6)


def test_after_max_rounds_the_default_agent_gets_the_lead() -> None:
    boss = agent(99)
    r = rule(claim_timeout=timedelta(minutes=5), max_rounds=2, default_agent=boss)
    members = pool(5)
    first = decide(r, lead(), members, NOW)
    second = next_round(
        r, lead(), members, NOW, offered_member_ids=first.offered_member_ids, round_no=1
    )
    assert second.outcome == "offer"
    final = next_round(
        r, lead(), members, NOW, offered_member_ids=second.offered_member_ids, round_no=2
    )
    assert final.outcome == "assign"
    assert final.reason_code == "max_rounds_reached"
    assert final.used_default_agent
    assert emails(final) == ["agent99@example.com"]


def test_ties_go_by_member_position_not_by_creation_order() -> None:
    # Member 1 was created first (lowest ids) but sits lower in the pool.
    members = [member(1, position=3), member(2, position=1), member(3, position=2)]
    assert emails(decide(rule(), lead(), members, NOW)) == ["agent2@example.com"]


def test_full_ties_rotate_instead_of_favouring_the_senior_member() -> None:
    same = NOW - timedelta(hours=1)
    members = [member(i, position=0, last_turn_at=same) for i in range(1, 5)]
    winners = {emails(decide(rule(), lead(i), members, NOW))[0] for i in range(1, 60)}
    assert len(winners) == 4


def test_turn_timestamp_keeps_turns_strictly_ordered() -> None:
    members = [member(1, last_turn_at=NOW), member(2)]
    stamp = turn_timestamp(members, NOW)
    assert stamp == NOW + timedelta(microseconds=1)
    assert turn_timestamp(members, NOW + timedelta(seconds=1)) == NOW + timedelta(seconds=1)


# --- broadcast: piranha, distribute all, ring all -----------------------------------------


def test_piranha_pool_sends_the_lead_to_all_agents_within_the_pool() -> None:
    # Seed 001: "the lead is sent to all agents within the pool. First agent to call the lead
    # using the pin number associated gets the lead assigned."
    members = [*pool(4), member(5, available=False)]
    decision = decide(rule("broadcast"), lead(), members, NOW)
    assert decision.outcome == "offer"
    assert sorted(emails(decision)) == [f"agent{i}@example.com" for i in range(1, 5)]
    assert decision.expires_at is None  # no claim time: offers stay until someone claims
    assert decision.offered_member_ids == {101, 102, 103, 104}
    assert reasons(decision)["agent5@example.com"] == "unavailable"


def test_ring_all_dials_up_to_ten_agents_at_a_time() -> None:
    # Seed 003: "Up to ten agents are dialed at a time."
    members = pool(25)
    r = rule("broadcast", batch_size=10, claim_timeout=timedelta(minutes=1))
    seen: set[int] = set()
    offered: frozenset[int] = frozenset()
    sizes = []
    decision = decide(r, lead(), members, NOW)
    while decision.outcome == "offer":
        batch = {c.member_id for c in decision.chosen if c.member_id is not None}
        assert not batch & seen
        seen |= batch
        sizes.append(len(batch))
        offered = decision.offered_member_ids
        decision = next_round(
            r, lead(), members, NOW, offered_member_ids=offered, round_no=decision.round_no
        )
    assert sizes == [10, 10, 5]
    assert seen == {m.id for m in members}
    assert decision.outcome == "exception"


def test_first_batch_follows_round_robin_order() -> None:
    members = [member(i, last_turn_at=NOW - timedelta(minutes=i)) for i in range(1, 6)]
    decision = decide(rule("broadcast", batch_size=2), lead(), members, NOW)
    assert emails(decision) == ["agent5@example.com", "agent4@example.com"]


def test_after_hours_ring_all_puts_the_lead_in_the_unassigned_queue() -> None:
    # Seed 003: "If a lead is received after hours, the lead will be placed in the
    # Unassigned queue."
    r = rule("broadcast", batch_size=10, schedule=OFFICE, after_hours="unassigned")
    saturday = datetime(2024, 6, 8, 11, 0, tzinfo=AMS)
    decision = decide(r, lead(), pool(3), saturday)
    assert decision.outcome == "queue_unassigned"
    assert decision.status == "unassigned"
    assert decision.reason_code == "after_hours_unassigned"
    assert decide(r, lead(), pool(3), NOW).outcome == "offer"


# --- working hours ------------------------------------------------------------------------


def test_working_hours_and_holidays_give_the_agent_until_the_next_open_hours_plus_the_delay() -> (
    None
):
    # Seed 001: "if leads come in outside the specified working hours, or during a Holiday,
    # the agent has until the next open hours plus the time delay to call and claim a lead".
    christmas = replace(OFFICE, holidays=frozenset({date(2024, 12, 25), date(2024, 12, 26)}))
    r = rule(schedule=christmas, after_hours="offer_now", claim_timeout=timedelta(minutes=15))
    evening = datetime(2024, 12, 24, 18, 0, tzinfo=AMS)
    decision = decide(r, lead(), pool(2), evening)
    assert decision.outcome == "offer"
    assert decision.expires_at == datetime(2024, 12, 27, 9, 15, tzinfo=AMS)
    late = decide(r, lead(), pool(2), datetime(2024, 12, 24, 16, 55, tzinfo=AMS))
    assert late.expires_at == datetime(2024, 12, 27, 9, 10, tzinfo=AMS)


def test_hold_keeps_the_lead_until_the_schedule_opens() -> None:
    r = rule(schedule=OFFICE, claim_timeout=timedelta(minutes=15))  # after_hours defaults to hold
    friday_night = datetime(2024, 6, 7, 20, 0, tzinfo=AMS)
    decision = decide(r, lead(), pool(2), friday_night)
    assert decision.outcome == "hold"
    assert decision.status == "held"
    assert decision.hold_until == datetime(2024, 6, 10, 9, 0, tzinfo=AMS)
    assert decision.chosen == ()
    assert decide(r, lead(), pool(2), decision.hold_until).outcome == "offer"


def test_offer_now_judges_agent_hours_at_the_opening() -> None:
    early_shift = ScheduleSnapshot(
        "Europe/Amsterdam", tuple(Interval(d, time(8), time(12)) for d in range(5))
    )
    r = rule(schedule=OFFICE, after_hours="offer_now")
    members = [member(1, schedule=early_shift)]
    sunday = datetime(2024, 6, 9, 15, 0, tzinfo=AMS)
    assert decide(r, lead(), members, sunday).outcome == "assign"
    strict = rule(schedule=OFFICE, after_hours="hold")
    assert decide(strict, lead(), members, sunday).outcome == "hold"


def test_a_rule_schedule_without_open_hours_is_an_exception() -> None:
    r = rule(schedule=ScheduleSnapshot("Europe/Amsterdam"))
    decision = decide(r, lead(), pool(2), NOW)
    assert (decision.outcome, decision.reason_code) == ("exception", "schedule_never_open")


# --- eligibility --------------------------------------------------------------------------


def test_each_rejected_member_gets_one_reason_in_check_order() -> None:
    night = ScheduleSnapshot(
        "Europe/Amsterdam", tuple(Interval(d, time(22), time(6)) for d in range(7))
    )
    on_leave = replace(OFFICE, holidays=frozenset({NOW.date()}))
    members = [
        member(1, active=False, available=False),  # member_inactive wins over later checks
        MemberSnapshot(id=102, agent=agent(2, active=False), position=2),
        member(3, available=False),
        member(4, filters=(Filter("country", "eq", "BE"),)),
        member(5, schedule=night),
        member(6, schedule=on_leave),
        member(7, caps=Caps(day=2), received_at=(NOW - timedelta(hours=1),) * 2),
        member(8),
        member(9),
    ]
    decision = decide(rule(), lead(country="NL"), members, NOW, offered=frozenset({108}))
    assert reasons(decision) == {
        "agent1@example.com": "member_inactive",
        "agent2@example.com": "agent_inactive",
        "agent3@example.com": "unavailable",
        "agent4@example.com": "filter_mismatch",
        "agent5@example.com": "outside_hours",
        "agent6@example.com": "on_holiday",
        "agent7@example.com": "cap_reached",
        "agent8@example.com": "already_offered",
        "agent9@example.com": None,
    }
    assert emails(decision) == ["agent9@example.com"]
    details = {c.email: c.detail for c in decision.candidates}
    assert details["agent4@example.com"] == "country eq 'BE' (lead: 'NL')"
    assert details["agent7@example.com"] == "day cap 2 reached: 2 received"


def test_member_caps_override_rule_caps_and_tiers_scale_them() -> None:
    two_today = (NOW - timedelta(hours=1),) * 2
    r = rule(caps=Caps(day=2))
    capped = member(1, received_at=two_today)
    roomy = member(2, received_at=two_today, caps=Caps(day=5))
    decision = decide(r, lead(), [capped, roomy], NOW)
    assert reasons(decision) == {"agent2@example.com": None, "agent1@example.com": "cap_reached"}
    tiered = rule(caps=Caps(day=2), tiers=(PerformanceTier("conversion_rate", "gte", 0.2, 1.5),))
    star = member(1, received_at=two_today, metrics=AgentMetrics(leads=10, conversion_rate=0.3))
    assert decide(tiered, lead(), [star], NOW).outcome == "assign"  # cap 3 now


def test_pre_counted_received_leads_are_used_when_given() -> None:
    counted = replace(member(1, caps=Caps(week=10)), received_counts=ReceivedCounts(week=10))
    decision = decide(rule(), lead(), [counted], NOW)
    assert decision.outcome == "exception"
    assert reasons(decision) == {"agent1@example.com": "cap_reached"}


# --- fallbacks (seed 003) -----------------------------------------------------------------


def test_leads_without_eligible_agents_go_to_the_default_agent() -> None:
    members = [member(1, available=False), member(2, active=False)]
    decision = decide(rule(default_agent=agent(50)), lead(), members, NOW)
    assert decision.outcome == "assign"
    assert decision.used_default_agent
    assert decision.reason_code == "no_eligible_member"
    assert emails(decision) == ["agent50@example.com"]
    assert "1 unavailable" in decision.reason and "1 member_inactive" in decision.reason


def test_without_a_default_agent_the_lead_goes_to_lead_exception() -> None:
    decision = decide(rule(), lead(), [member(1, available=False)], NOW)
    assert decision.outcome == "exception"
    assert decision.status == "exception"
    assert decision.reason_code == "no_eligible_member"
    assert "no default agent" in decision.reason
    empty = decide(rule(), lead(), [], NOW)
    assert empty.outcome == "exception" and "the pool is empty" in empty.reason


def test_an_ineligible_default_agent_means_lead_exception_with_both_reasons() -> None:
    r = rule(default_agent=agent(50, available=False))
    decision = decide(r, lead(), [member(1, available=False)], NOW)
    assert decision.outcome == "exception"
    assert decision.default_candidate is not None
    assert decision.default_candidate.reason == "unavailable"


def test_a_default_agent_in_the_pool_is_checked_as_a_member_but_may_have_been_offered() -> None:
    members = [member(1), member(2, caps=Caps(day=0))]
    r = rule(claim_timeout=timedelta(minutes=5), default_agent=agent(1))
    assert decide(r, lead(), members, NOW, offered=frozenset({101})).outcome == "assign"
    capped = rule(default_agent=agent(2))
    assert decide(capped, lead(), [member(2, caps=Caps(day=0))], NOW).outcome == "exception"


# --- direct (seed 003) --------------------------------------------------------------------


def test_direct_assigns_by_assign_to_email() -> None:
    decision = decide(rule("direct"), lead(assign_to_email=" Agent2@Example.com "), pool(3), NOW)
    assert (decision.outcome, emails(decision)) == ("assign", ["agent2@example.com"])


def test_direct_assigns_by_assign_to_user_id_even_outside_the_pool() -> None:
    outsider = agent(42)
    decision = decide(
        rule("direct"), lead(assign_to_user_id="42"), pool(3), NOW, directory=[outsider]
    )
    assert emails(decision) == ["agent42@example.com"]
    assert decision.chosen[0].member_id is None


def test_direct_without_either_field_or_with_no_match_uploads_a_prospect() -> None:
    # Seed 003: "If neither of these fields are defined or no match is found, the lead will
    # not be assigned and instead be uploaded as a prospect."
    neither = decide(rule("direct"), lead(), pool(2), NOW)
    assert (neither.outcome, neither.reason_code) == ("prospect", "direct_no_target")
    unknown = decide(rule("direct"), lead(assign_to_email="nobody@example.com"), pool(2), NOW)
    assert (unknown.outcome, unknown.reason_code) == ("prospect", "direct_unknown_target")
    assert unknown.status == "prospect"


def test_direct_to_an_ineligible_agent_falls_back_to_default_then_exception() -> None:
    members = [member(1, available=False), member(2)]
    named = lead(assign_to_email="agent1@example.com")
    with_default = decide(rule("direct", default_agent=agent(2)), named, members, NOW)
    assert (with_default.outcome, emails(with_default)) == ("assign", ["agent2@example.com"])
    assert with_default.reason_code == "direct_target_ineligible"
    without = decide(rule("direct"), named, members, NOW)
    assert (without.outcome, without.reason_code) == ("exception", "direct_target_ineligible")


# --- none, manual, pull, hopper -----------------------------------------------------------


def test_none_uploads_the_lead_as_a_prospect() -> None:
    # Seed 003: "Leads will not be assigned but will upload as prospects".
    decision = decide(rule("none"), lead(), pool(3), NOW)
    assert (decision.outcome, decision.status, decision.chosen) == ("prospect", "prospect", ())


def test_manual_goes_to_the_lead_assignment_queue() -> None:
    decision = decide(rule("manual"), lead(), pool(3), NOW)
    assert (decision.outcome, decision.status) == ("queue_unassigned", "unassigned")


def test_pull_and_hopper_leads_wait_with_who_could_take_them() -> None:
    members = [member(1), member(2, available=False)]
    pulled = decide(rule("pull"), lead(), members, NOW)
    assert (pulled.outcome, pulled.status) == ("wait_pull", "waiting")
    assert reasons(pulled) == {"agent1@example.com": None, "agent2@example.com": "unavailable"}
    hopper = decide(rule("hopper"), lead(), members, NOW)
    assert (hopper.outcome, hopper.status) == ("wait_hopper", "waiting")


def test_get_lead_gives_the_oldest_waiting_lead_the_agent_may_take() -> None:
    me = member(1, filters=(Filter("country", "eq", "NL"),))
    pull = rule("pull", pull_allotment=2)
    other_pool = replace(rule("pull"), id=2, pool_id=2)
    old_be = replace(lead(1, country="BE"), created_at=NOW - timedelta(hours=3))
    old_elsewhere = replace(lead(2, country="NL"), created_at=NOW - timedelta(hours=2))
    nl = replace(lead(3, country="NL"), created_at=NOW - timedelta(hours=1))
    newest = replace(lead(4, country="NL"), created_at=NOW)
    waiting = [(pull, newest), (pull, nl), (other_pool, old_elsewhere), (pull, old_be)]
    pick = choose_pull({1: me}, waiting, NOW)
    assert (pick.lead_id, pick.rule_id, pick.member_id) == (3, 1, 101)
    assert pick.skipped == ((1, "filter_mismatch"), (2, "not_member"))
    used = replace(me, received_at=(NOW - timedelta(hours=1),) * 2)
    none = choose_pull({1: used}, waiting, NOW)
    assert none.lead_id is None and none.reason_code == "nothing_to_pull"
    assert (3, "allotment_reached") in none.skipped


def test_pull_outside_the_rule_schedule_gives_nothing() -> None:
    pull = rule("pull", schedule=OFFICE)
    sunday = datetime(2024, 6, 9, 12, 0, tzinfo=AMS)
    pick = choose_pull({1: member(1)}, [(pull, lead())], sunday)
    assert pick.lead_id is None and pick.skipped == ((1, "outside_hours"),)


# --- load, weight, performance (seed 004) -------------------------------------------------


def test_load_balanced_picks_fewest_open_leads_ties_by_round_robin() -> None:
    members = [
        member(1, open_leads=3),
        member(2, open_leads=1, last_turn_at=NOW - timedelta(minutes=5)),
        member(3, open_leads=1, last_turn_at=NOW - timedelta(minutes=50)),
    ]
    assert emails(decide(rule("load_balanced"), lead(), members, NOW)) == ["agent3@example.com"]


def test_weighted_shares_follow_the_weights() -> None:
    members = [member(1, weight=3), member(2, weight=1)]
    r = rule("weighted")
    now = NOW
    given: dict[int, int] = {101: 0, 102: 0}
    for i in range(8):
        decision = decide(r, lead(i), members, now)
        chosen = decision.chosen[0].member_id
        assert chosen is not None
        given[chosen] += 1
        stamp = turn_timestamp(members, now)
        members = [
            replace(
                m, received_at=(*m.received_at, now), agent=replace(m.agent, last_turn_at=stamp)
            )
            if m.id == chosen
            else m
            for m in members
        ]
        now += timedelta(minutes=1)
    assert given == {101: 6, 102: 2}


def test_performance_picks_the_highest_conversion_rate_and_measures_newcomers_first() -> None:
    members = [
        member(1, metrics=AgentMetrics(leads=20, conversion_rate=0.1)),
        member(2, metrics=AgentMetrics(leads=20, conversion_rate=0.3)),
        member(3, metrics=AgentMetrics(leads=20, conversion_rate=0.2)),
    ]
    r = rule("performance")
    assert emails(decide(r, lead(), members, NOW)) == ["agent2@example.com"]
    newcomer = member(4)
    assert emails(decide(r, lead(), [*members, newcomer], NOW)) == ["agent4@example.com"]


# --- output and scale ---------------------------------------------------------------------


def test_decisions_serialise_to_json() -> None:
    r = rule("broadcast", claim_timeout=timedelta(minutes=2), default_agent=agent(9))
    decision = decide(r, lead(), [*pool(3), member(4, available=False)], NOW)
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["outcome"] == "offer" and data["status"] == "offered"
    assert data["expires_at"] == (NOW + timedelta(minutes=2)).astimezone(UTC).isoformat()
    assert [c["rank"] for c in data["candidates"]] == [1, 2, 3, None]
    assert data["candidates"][-1]["reason"] == "unavailable"
