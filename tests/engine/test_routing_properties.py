"""Properties of routing over sequences of decisions (hypothesis).

Each simulation replays what the services layer does after an assignment: stamp the
agent's ``last_turn_at`` with ``turn_timestamp`` and add the lead to the member's
received leads.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from distribution.engine.caps import scaled_cap, tier_multiplier, window_end, window_start
from distribution.engine.routing import decide, turn_timestamp
from distribution.engine.schedule import is_holiday, is_open
from distribution.engine.types import (
    AgentMetrics,
    AgentSnapshot,
    Caps,
    Decision,
    Interval,
    LeadSnapshot,
    MemberSnapshot,
    PerformanceTier,
    RuleSnapshot,
    ScheduleSnapshot,
)

START = datetime(2024, 3, 29, 0, 0, tzinfo=UTC)  # the weekend Europe changes its clocks
ZONES = ["Europe/Amsterdam", "America/New_York", "UTC"]


def lead(i: int) -> LeadSnapshot:
    return LeadSnapshot(id=i, source="web", campaign=None, created_at=START)


def rule(strategy: str, **kw: object) -> RuleSnapshot:
    return RuleSnapshot(id=1, name="r", strategy=strategy, pool_id=1, **kw)  # type: ignore[arg-type]


def plain_member(i: int, **kw: object) -> MemberSnapshot:
    return MemberSnapshot(
        id=100 + i,
        agent=AgentSnapshot(id=i, email=f"a{i}@example.com"),
        position=i,
        **kw,  # type: ignore[arg-type]
    )


def record(
    members: list[MemberSnapshot], decision: Decision, now: datetime
) -> list[MemberSnapshot]:
    """Apply an assignment the way the services layer does."""
    if decision.outcome != "assign":
        return members
    chosen = decision.chosen[0].member_id
    stamp = turn_timestamp(members, now)
    return [
        replace(
            m,
            received_at=(*m.received_at, now),
            agent=replace(m.agent, last_turn_at=stamp, open_leads=m.agent.open_leads + 1),
        )
        if m.id == chosen
        else m
        for m in members
    ]


def counts(members: list[MemberSnapshot]) -> dict[int, int]:
    return {m.id: len(m.received_at) for m in members}


caps_st = st.builds(
    Caps,
    st.none() | st.integers(0, 2),
    st.none() | st.integers(0, 5),
    st.none() | st.integers(0, 12),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    member_caps=st.lists(caps_st, min_size=1, max_size=5),
    rule_caps=caps_st,
    rates=st.lists(st.none() | st.floats(0, 1), min_size=5, max_size=5),
    strategy=st.sampled_from(["round_robin", "weighted", "load_balanced", "performance"]),
    gaps=st.lists(st.integers(0, 5 * 3600), min_size=1, max_size=60),
)
def test_no_cap_is_ever_exceeded(
    zone: str,
    member_caps: list[Caps],
    rule_caps: Caps,
    rates: list[float | None],
    strategy: str,
    gaps: list[int],
) -> None:
    tiers = (PerformanceTier("conversion_rate", "gte", 0.5, 1.5),)
    r = rule(strategy, caps=rule_caps, tiers=tiers, timezone=zone)
    members = [
        MemberSnapshot(
            id=100 + i,
            agent=AgentSnapshot(
                id=i, email=f"a{i}@example.com", metrics=AgentMetrics(conversion_rate=rates[i])
            ),
            position=i,
            caps=c,
            weight=i + 1,
        )
        for i, c in enumerate(member_caps)
    ]
    now = START
    for i, gap in enumerate(gaps):
        now += timedelta(seconds=gap)
        members = record(members, decide(r, lead(i), members, now), now)
    for m in members:
        multiplier = tier_multiplier(tiers, m.agent.metrics)
        for period, cap in m.caps.merged_over(rule_caps).items():
            for stamp in m.received_at:
                start, end = window_start(period, stamp, zone), window_end(period, stamp, zone)
                inside = sum(start <= s < end for s in m.received_at)
                assert inside <= scaled_cap(cap, multiplier)


@settings(max_examples=80, deadline=None)
@given(
    size=st.integers(2, 12),
    gaps=st.lists(st.integers(0, 600), min_size=1, max_size=60),
    strategy=st.sampled_from(["round_robin", "weighted", "load_balanced"]),
    positions=st.booleans(),
)
def test_equal_weight_round_robin_spread_is_at_most_one_at_every_prefix(
    size: int, gaps: list[int], strategy: str, positions: bool
) -> None:
    members = [
        plain_member(i) if positions else replace(plain_member(i), position=0) for i in range(size)
    ]
    now = START
    for i, gap in enumerate(gaps):
        now += timedelta(seconds=gap)
        members = record(members, decide(rule(strategy), lead(i), members, now), now)
        received = counts(members).values()
        assert max(received) - min(received) <= 1


@settings(max_examples=100, deadline=None)
@given(
    weights=st.lists(
        st.integers(1, 12) | st.sampled_from([0.5, 1.5, 2.25]), min_size=2, max_size=9
    ),
    leads=st.integers(1, 80),
    catch_up=st.booleans(),
)
def test_weighted_shares_stay_within_one_lead_of_exact_at_every_prefix(
    weights: list[float], leads: int, catch_up: bool
) -> None:
    members = [replace(plain_member(i), weight=w) for i, w in enumerate(weights)]
    total = sum(Fraction(w) for w in weights)
    r = rule("weighted", catch_up=catch_up)
    now = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    for n in range(1, leads + 1):
        members = record(members, decide(r, lead(n), members, now), now)
        for m in members:
            exact = n * Fraction(m.weight) / total
            assert abs(len(m.received_at) - exact) < 1, (n, m.weight)


OFFICE = ScheduleSnapshot(
    "Europe/Amsterdam", tuple(Interval(d, time(9), time(17)) for d in range(5))
)
NIGHTS = ScheduleSnapshot(
    "America/New_York",
    tuple(Interval(d, time(20), time(4)) for d in range(7)),
    frozenset({date(2024, 3, 30), date(2024, 3, 31)}),
)
HOLIDAY_OFFICE = replace(OFFICE, holidays=frozenset({date(2024, 4, 1), date(2024, 4, 2)}))


@st.composite
def random_member(draw: st.DrawFn, i: int) -> MemberSnapshot:
    agent = AgentSnapshot(
        id=i,
        email=f"a{i}@example.com",
        active=draw(st.booleans()),
        available=draw(st.booleans()),
        schedule=draw(st.sampled_from([None, OFFICE, NIGHTS, HOLIDAY_OFFICE])),
        last_turn_at=draw(st.none() | st.just(START - timedelta(hours=i))),
        open_leads=draw(st.integers(0, 3)),
    )
    return MemberSnapshot(id=100 + i, agent=agent, position=i, active=draw(st.booleans()))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    size=st.integers(1, 8),
    minutes=st.integers(0, 6 * 24 * 60),
    strategy=st.sampled_from(
        ["round_robin", "broadcast", "load_balanced", "weighted", "performance"]
    ),
)
def test_inactive_unavailable_off_hours_and_holiday_members_are_never_chosen(
    data: st.DataObject, size: int, minutes: int, strategy: str
) -> None:
    members = [data.draw(random_member(i)) for i in range(size)]
    now = START + timedelta(minutes=minutes)
    decision = decide(rule(strategy), lead(1), members, now)
    by_id = {m.id: m for m in members}
    for chosen in decision.chosen:
        assert chosen.member_id is not None
        m = by_id[chosen.member_id]
        assert m.active and m.agent.active and m.agent.available
        assert is_open(m.agent.schedule, now)
        assert not is_holiday(m.agent.schedule, now)
    for candidate in decision.candidates:
        assert candidate.member_id is not None
        m = by_id[candidate.member_id]
        if candidate.reason == "on_holiday":
            assert is_holiday(m.agent.schedule, now)
        if candidate.reason is None:
            assert candidate.rank is not None
    fine = [
        m
        for m in members
        if m.active and m.agent.active and m.agent.available and is_open(m.agent.schedule, now)
    ]
    assert (decision.outcome == "exception") == (not fine)


@settings(max_examples=50, deadline=None)
@given(size=st.integers(2, 6), first_lead=st.integers(1, 10**6))
def test_full_ties_never_fall_back_to_creation_order(size: int, first_lead: int) -> None:
    same = START - timedelta(hours=1)
    members = [
        MemberSnapshot(
            id=100 + i,
            agent=AgentSnapshot(id=i, email=f"a{i}@example.com", last_turn_at=same),
            position=0,
        )
        for i in range(size)
    ]
    winners = [
        decide(rule("round_robin"), lead(first_lead + k), members, START).chosen[0].member_id
        for k in range(40)
    ]
    assert len(set(winners)) > 1  # the oldest member (lowest id) does not win every tie


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(6))))
def test_ties_follow_position_whatever_the_ids(positions: list[int]) -> None:
    members = [replace(plain_member(i), position=p) for i, p in enumerate(positions)]
    decision = decide(rule("round_robin"), lead(1), members, START)
    assert decision.chosen[0].member_id == 100 + positions.index(0)


def _quota_order_in_fractions(
    members: list[MemberSnapshot], received: dict[int, int], catch_up: bool
) -> list[int]:
    """The weighted order as the quota method defines it, in exact fractions."""
    from distribution.engine.strategies import round_robin_key

    weights = {m.id: Fraction(m.weight) for m in members}
    total = sum(weights.values(), Fraction(0))
    n = sum(received.get(m.id, 0) for m in members)

    def key(m: MemberSnapshot) -> tuple[int, Fraction, tuple[object, ...]]:
        w = weights[m.id]
        count = received.get(m.id, 0)
        if not catch_up:
            count = max(count, (n * w / total).__floor__())
        return (0 if count * total < (n + 1) * w else 1, (count + 1) / w, round_robin_key(m, {}))

    return [m.id for m in sorted(members, key=key)]


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(
        st.integers(1, 40) | st.sampled_from([0.5, 1.5, 2.25, 0.1, 0.3, 7.75]),
        min_size=1,
        max_size=12,
    ),
    received=st.lists(st.integers(0, 10**6), min_size=12, max_size=12),
    catch_up=st.booleans(),
)
def test_weighted_order_is_the_exact_quota_order_whatever_the_weights(
    weights: list[float], received: list[int], catch_up: bool
) -> None:
    """Integer (and binary-fraction) weights are ranked in integer arithmetic: the same
    order as exact fractions give."""
    from distribution.engine.strategies import rank_weighted

    members = [replace(plain_member(i), weight=w, position=0) for i, w in enumerate(weights)]
    counts_by_id = {m.id: received[i] for i, m in enumerate(members)}
    ranked = [m.id for m in rank_weighted(members, {}, counts_by_id, catch_up=catch_up)]
    assert ranked == _quota_order_in_fractions(members, counts_by_id, catch_up)


@settings(max_examples=60, deadline=None)
@given(
    member_caps=st.lists(caps_st, min_size=1, max_size=6),
    flags=st.lists(st.sampled_from(["ok", "inactive", "away", "filter", "nights"]), min_size=6),
    strategy=st.sampled_from(["round_robin", "weighted", "load_balanced", "broadcast"]),
    gaps=st.lists(st.integers(0, 3 * 3600), min_size=1, max_size=40),
    countries=st.lists(st.sampled_from(["NL", "XX", ""]), min_size=40, max_size=40),
)
def test_a_batch_sharing_its_checkers_decides_as_fresh_checkers_do(
    member_caps: list[Caps],
    flags: list[str],
    strategy: str,
    gaps: list[int],
    countries: list[str],
) -> None:
    """The services decide a batch at one `now` with Checkers shared from lead to lead; the
    decisions (and their explanations) are those of a new Checker per lead."""
    from distribution.engine.eligibility import Checkers
    from distribution.engine.types import Filter

    r = rule(
        strategy,
        batch_size=2,
        claim_timeout=timedelta(minutes=5) if strategy == "broadcast" else None,
    )
    members = [
        MemberSnapshot(
            id=100 + i,
            agent=AgentSnapshot(
                id=i,
                email=f"a{i}@example.com",
                active=flags[i] != "inactive",
                available=flags[i] != "away",
                schedule=NIGHTS if flags[i] == "nights" else None,
            ),
            position=i,
            caps=c,
            filters=(Filter("country", "ne", "XX"),) if flags[i] == "filter" else (),
        )
        for i, c in enumerate(member_caps)
    ]
    shared = Checkers()
    now = START
    for i, gap in enumerate(gaps):
        if gap > 2 * 3600:  # a new batch: a new moment, new Checkers
            now += timedelta(seconds=gap)
            shared = Checkers()
        snap = replace(lead(i), fields={"country": countries[i]})
        fresh = decide(r, snap, members, now)
        assert decide(r, snap, members, now, checkers=shared) == fresh
        members = record(members, fresh, now)
