"""Property: a pool never receives more than its own caps in any calendar window, whether
the leads come in one batch or many, and a lead is refused for the pool's cap only when a
window really is full."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest
import time_machine
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from distribution.engine.caps import window_start
from distribution.engine.eligibility import evaluate_members
from distribution.engine.routing import decide
from distribution.engine.types import (
    PERIODS,
    AgentSnapshot,
    Caps,
    LeadSnapshot,
    MemberSnapshot,
    ReceivedCounts,
    RuleSnapshot,
)
from distribution.models import Assignment, Pool
from distribution.services.distribute import leads_distribute_all_pending
from leads.models import Lead
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_pool, make_rule

START = dt.datetime(2025, 3, 3, 8, 30, tzinfo=dt.UTC)
cap_values = st.one_of(st.none(), st.integers(min_value=0, max_value=6))
steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=600),  # minutes since the previous step
        st.integers(min_value=1, max_value=7),  # leads arriving
        st.integers(min_value=1, max_value=5),  # leads per batch
    ),
    min_size=1,
    max_size=6,
)


def _windows(stamps: list[dt.datetime], period: str) -> Counter[dt.datetime]:
    return Counter(window_start(period, s, settings.TIME_ZONE) for s in stamps)


@pytest.mark.django_db
@hsettings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(hour=cap_values, day=cap_values, week=cap_values, plan=steps)
def test_a_pool_never_receives_more_than_its_caps_in_any_window(hour, day, week, plan):
    Lead.objects.all().delete()
    Assignment.objects.all().delete()
    pool = Pool.objects.filter(name="capped").first()
    if pool is None:
        web = SourceFactory(slug="web")
        pool = make_pool([AgentFactory() for _ in range(3)], name="capped")
        make_rule(pool=pool, sources=[web])
    web = pool.rules.get().sources.get()
    Pool.objects.filter(pk=pool.pk).update(cap_hour=hour, cap_day=day, cap_week=week)
    caps = {"hour": hour, "day": day, "week": week}
    now = START
    refused: list[dt.datetime] = []
    for minutes, arriving, per_batch in plan:
        now += dt.timedelta(minutes=minutes)
        with time_machine.travel(now, tick=False):
            Lead.objects.bulk_create(
                Lead(source=web, email=f"l{i}@example.com") for i in range(arriving)
            )
            outcomes = leads_distribute_all_pending(chunk=per_batch)
        refused += [now] * outcomes.get("no_eligible_member", 0)
        assert sum(outcomes.values()) == arriving
    stamps = list(Assignment.objects.filter(pool=pool).values_list("created_at", flat=True))
    for period, cap in caps.items():
        if cap is not None:
            counts = _windows(stamps, period)
            assert max(counts.values(), default=0) <= cap, (period, cap, counts)
    # refused only when one of the pool's windows was full at that moment
    for when in refused:
        assert any(
            cap is not None
            and sum(
                1
                for s in stamps
                if window_start(period, s, settings.TIME_ZONE)
                == window_start(period, when, settings.TIME_ZONE)
                and s <= when
            )
            >= cap
            for period, cap in caps.items()
        ), when


# --- the engine alone: decide lead after lead with the pool's counts kept current ----------


def _member(i: int) -> MemberSnapshot:
    return MemberSnapshot(id=i, agent=AgentSnapshot(id=i, email=f"a{i}@x.com"), position=i)


@given(
    caps=st.tuples(cap_values, cap_values, cap_values, cap_values),
    start=st.tuples(*(st.integers(min_value=0, max_value=8) for _ in PERIODS)),
    leads=st.integers(min_value=1, max_value=30),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_the_engine_assigns_no_more_than_the_pool_has_left(caps, start, leads, seed):
    from distribution.engine.types import PoolUsage

    pool_caps = Caps(*caps)
    counts = ReceivedCounts(*start)
    rule = RuleSnapshot(id=1, name="r", strategy="round_robin", pool_id=1)
    members = [_member(i) for i in range(1, 4)]
    room = [c - counts.get(p) for p, c in pool_caps.items()]
    left = max(0, min(room)) if room else None
    given_out = 0
    rng = random.Random(seed)
    for n in range(leads):
        lead = LeadSnapshot(id=n, source=None, campaign=None, created_at=START)
        usage = PoolUsage(pool_caps, counts) if pool_caps.items() else None
        decision = decide(rule, lead, members, START, pool=usage, rng=rng)
        if decision.outcome == "assign":
            given_out += 1
            counts = ReceivedCounts(*(counts.get(p) + 1 for p in PERIODS))
        else:
            assert {c.reason for c in decision.candidates} == {"pool_cap_reached"}
            elig = evaluate_members(members, rule, lead, START, pool=usage)
            assert not elig.eligible
    assert given_out == (leads if left is None else min(leads, left))
