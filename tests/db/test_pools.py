"""distribution.db.pools: the one-query pool load equals the ORM loader, pool by pool."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine

from accounts.models import User
from distribution.db import pools
from distribution.loaders.routing import PoolWanted
from distribution.models import Assignment, Pool, PoolMember
from leads.models import Activity
from tests.db.conftest import rolled_back
from tests.factories import AgentFactory, LeadFactory
from tests.routing.conftest import make_schedule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
NOW = dt.datetime(2025, 3, 5, 15, 30, tzinfo=dt.UTC)  # a Wednesday


def _loaded(twin: Any, wanted: list[PoolWanted]) -> dict[Any, Any]:
    def run() -> dict[Any, Any]:
        schedules: dict[int, Any] = {}
        states = twin(wanted, now=NOW, schedules=schedules)
        return {
            "pools": {
                key: (s.pool_id, s.timezone, s.members, s.index, s.contacts, s.caps, s.counts)
                for key, s in states.items()
            },
            "schedules": schedules,
        }

    with time_machine.travel(NOW, tick=False):
        return rolled_back(run)


@pytest.fixture
def two_pools() -> tuple[Pool, Pool]:
    hours = make_schedule("office", tz="Europe/Amsterdam")
    a, b, c = AgentFactory(), AgentFactory(profile__available=False), AgentFactory()
    a.agent.schedule, a.agent.phone, a.agent.last_turn_at = hours, "+31 6 1", NOW
    a.agent.save()
    no_profile = User.objects.create(username="bare@example.com", email="bare@example.com")
    # the first pool has caps of its own (the whole pool), the second none
    first = Pool.objects.create(name="first", cap_day=10, cap_month=40)
    second = Pool.objects.create(name="second")
    filters = [{"field": "city", "op": "eq", "value": "Delft"}]
    PoolMember.objects.create(pool=first, agent=a, position=1, weight=2.5, cap_day=3)
    PoolMember.objects.create(pool=first, agent=b, position=0, filters=filters, active=False)
    PoolMember.objects.create(pool=first, agent=no_profile, position=2)
    PoolMember.objects.create(pool=second, agent=c, position=0, cap_hour=1)
    PoolMember.objects.create(pool=second, agent=a, position=1)
    # leads received through the pools at several ages: hour, day, week, month windows
    for agent, pool, age in [
        (a, first, dt.timedelta(minutes=5)),
        (a, first, dt.timedelta(hours=3)),
        (a, first, dt.timedelta(days=2)),
        (a, second, dt.timedelta(days=20)),
        (c, second, dt.timedelta(minutes=1)),
        (b, first, dt.timedelta(days=40)),  # outside every window
    ]:
        lead = LeadFactory(owner=agent, status="assigned")
        given = Assignment.objects.create(lead=lead, agent=agent, pool=pool, method="auto")
        Assignment.objects.filter(pk=given.pk).update(created_at=NOW - age)
        Activity.objects.create(lead=lead, agent=agent, kind="call_attempt")
    return first, second


@pytest.mark.parametrize(
    ("open_leads", "metrics"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_pools_load_twins_load_the_same_pools(two_pools, open_leads: bool, metrics: bool) -> None:
    first, second = two_pools
    wanted = [
        PoolWanted(first.pk, "UTC", with_open_leads=open_leads, with_metrics=metrics),
        PoolWanted(first.pk, "America/New_York"),  # one pool, caps counted in another zone
        PoolWanted(second.pk, "Europe/Amsterdam", with_metrics=metrics),
    ]
    postgresql = _loaded(pools._pg, wanted)
    assert postgresql == _loaded(pools._portable, wanted)
    members = postgresql["pools"][wanted[0].key][2]
    assert [m.agent.email for m in members][2] == "bare@example.com"
    assert members[1].received_counts.day == 2 and postgresql["schedules"]
    # the pool's own caps and window counts (every lead given through it, whoever got it)
    caps, counts = postgresql["pools"][wanted[0].key][5:7]
    assert (caps.day, caps.month, caps.hour) == (10, 40, None)
    assert (counts.hour, counts.day, counts.month) == (1, 2, 3)
    assert postgresql["pools"][wanted[2].key][6].month == 0  # no caps: not counted


def test_pools_load_twins_of_nothing_load_nothing() -> None:
    assert pools._pg([], now=NOW, schedules={}) == pools._portable([], now=NOW, schedules={}) == {}
