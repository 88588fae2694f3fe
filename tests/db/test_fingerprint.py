"""distribution.db.fingerprint: both twins change on the same writes and on no other.

The two twins hash differently (a value is only compared with itself, in one process), so
"the same effects" here is: unchanged when nothing changed, changed by any writer of a
configuration table, restored by a rollback, untouched by writes elsewhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import transaction

from distribution.caches.routing import routing_config
from distribution.db import fingerprint
from distribution.models import Holiday, Pool, Rule, Schedule
from leads.models import Lead
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_rule, make_schedule

TWINS = [fingerprint._pg, fingerprint._portable]


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("twin", TWINS, ids=["postgresql", "portable"])
def test_fingerprint_twins_change_on_the_same_writes(twin: Callable[[], str]) -> None:
    web = SourceFactory(slug="web")
    rule = make_rule(sources=[web])
    schedule = make_schedule()
    seen = [twin()]

    def changed() -> bool:
        seen.append(twin())
        return seen[-1] != seen[-2]

    assert not changed()  # nothing written
    AgentFactory()
    Pool.objects.create(name="p")
    Lead.objects.create(source=web, email="x@example.com")
    assert not changed()  # agents, pools and leads are not configuration
    Rule.objects.filter(pk=rule.pk).update(enabled=False)  # no save(), no signal
    assert changed()
    rule.sources.remove(web)  # m2m
    assert changed()
    Holiday.objects.create(schedule=schedule, date=dt.date(2025, 12, 25), name="Christmas")
    assert changed()
    Schedule.objects.filter(pk=schedule.pk).update(holiday_country="NL")
    assert changed()
    before = twin()
    with transaction.atomic():
        Rule.objects.filter(pk=rule.pk).update(priority=99)
        assert twin() != before
        transaction.set_rollback(True)
    assert twin() == before  # a rolled-back change restores it


@pytest.mark.django_db
def test_the_routing_configuration_is_cached_on_every_database(django_assert_num_queries):
    """SQLite too: the portable fingerprint keys the cache (it never cached before)."""
    make_rule(sources=[SourceFactory(slug="web")])
    now = dt.datetime.now(dt.UTC)
    first = routing_config(now)
    with django_assert_num_queries(1):  # the fingerprint
        assert routing_config(now) is first
    Rule.objects.update(priority=5)
    assert routing_config(now) is not first
