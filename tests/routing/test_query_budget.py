"""Query budgets: one lead costs the same whatever the pool size; a batch is amortised."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AgentProfile, User
from distribution.models import Pool, PoolMember, Rule
from distribution.services.distribute import lead_distribute
from distribution.services.queueing import leads_distribute_pending
from leads.models import Lead
from tests.routing.conftest import make_rule

pytestmark = pytest.mark.django_db
ONE_LEAD_BUDGET = 20


def bulk_pool(name: str, n: int) -> Pool:
    users = User.objects.bulk_create(
        User(username=f"{name}-{i}@example.com", email=f"{name}-{i}@example.com") for i in range(n)
    )
    AgentProfile.objects.bulk_create(AgentProfile(user=u) for u in users)
    pool = Pool.objects.create(name=name)
    PoolMember.objects.bulk_create(
        PoolMember(pool=pool, agent=u, position=i, cap_day=1000) for i, u in enumerate(users)
    )
    return pool


def queries_to_route_one(source, strategy: str, pool: Pool) -> int:
    lead = Lead.objects.create(source=source, email="one@example.com")
    with CaptureQueriesContext(connection) as ctx:
        lead_distribute(lead_id=lead.pk)
    lead.refresh_from_db()
    assert lead.status in ("assigned", "offered")
    return len(ctx)


@pytest.mark.parametrize(
    "strategy", ["round_robin", "weighted", "load_balanced", "performance", "broadcast"]
)
def test_routing_one_lead_costs_the_same_with_10_or_500_members(
    web, strategy, django_assert_max_num_queries
):
    if strategy == "broadcast" and connection.vendor == "sqlite":
        pytest.skip(
            "SQLite limits variables per statement, so 500 offers take several "
            "INSERTs; the constant budget is a PostgreSQL property"
        )
    small, large = bulk_pool("small", 10), bulk_pool("large", 500)
    rule = make_rule(pool=small, sources=[web], strategy=strategy)
    with django_assert_max_num_queries(ONE_LEAD_BUDGET):
        with_10 = queries_to_route_one(web, strategy, small)
    rule.pool = large
    rule.save()
    with_500 = queries_to_route_one(web, strategy, large)
    assert with_10 == with_500


def test_a_batch_of_1000_leads_costs_at_most_two_queries_per_lead(web):
    make_rule(pool=bulk_pool("team", 50), sources=[web])
    Lead.objects.bulk_create(Lead(source=web, email=f"b{i}@example.com") for i in range(1000))
    with CaptureQueriesContext(connection) as ctx:
        outcomes = leads_distribute_pending()
    assert outcomes == {"assigned": 1000}
    assert len(ctx) <= 2 * 1000, len(ctx)
    per_agent = Counter(Lead.objects.values_list("owner", flat=True))
    assert len(per_agent) == 50 and set(per_agent.values()) == {20}  # round robin, even


WARM_ONE_LEAD_BUDGET = 7  # with the routing configuration cached (BEGIN and COMMIT included)


@pytest.mark.postgres  # the configuration cache and the one-statement writes are PostgreSQL's
@pytest.mark.parametrize("strategy", ["round_robin", "weighted", "load_balanced", "broadcast"])
def test_once_the_configuration_is_cached_one_lead_costs_a_fixed_few_queries(
    web, strategy, django_assert_max_num_queries
):
    pool = bulk_pool("team", 30)
    make_rule(pool=pool, sources=[web], strategy=strategy)
    queries_to_route_one(web, strategy, pool)  # loads and caches the configuration
    lead = Lead.objects.create(source=web, email="two@example.com")
    with django_assert_max_num_queries(WARM_ONE_LEAD_BUDGET):
        lead_distribute(lead_id=lead.pk)


def test_a_configuration_change_by_any_writer_is_seen_by_the_next_lead(web):
    """The cache is keyed by the configuration's contents: even a QuerySet.update() that
    bypasses save() (no updated_at, no signal) is seen at once."""
    rule = make_rule(pool=bulk_pool("team", 3), sources=[web])
    queries_to_route_one(web, "round_robin", Pool.objects.get(name="team"))
    Rule.objects.filter(pk=rule.pk).update(enabled=False)
    lead = Lead.objects.create(source=web, email="after@example.com")
    lead_distribute(lead_id=lead.pk)
    lead.refresh_from_db()
    assert lead.owner_id is None and lead.status == "unassigned"


@pytest.mark.postgres  # the one-query pool load is PostgreSQL's
def test_a_pool_with_caps_of_its_own_costs_no_extra_query_for_one_lead(
    web, django_assert_max_num_queries
):
    """The pool's own caps and window counts come with the pool load (one statement)."""
    pool = bulk_pool("team", 30)
    Pool.objects.filter(pk=pool.pk).update(cap_hour=500, cap_day=1000, cap_month=9000)
    make_rule(pool=pool, sources=[web])
    queries_to_route_one(web, "round_robin", pool)  # loads and caches the configuration
    lead = Lead.objects.create(source=web, email="two@example.com")
    with django_assert_max_num_queries(WARM_ONE_LEAD_BUDGET):
        lead_distribute(lead_id=lead.pk)
    assert Lead.objects.get(pk=lead.pk).status == "assigned"


def _batch_queries(web, n: int) -> int:
    Lead.objects.bulk_create(
        Lead(source=web, email=f"q{n}-{i}@example.com", status="pending") for i in range(n)
    )
    with CaptureQueriesContext(connection) as ctx:
        outcomes = leads_distribute_pending()
    assert outcomes == {"assigned": n}
    return len(ctx)


def test_owner_and_action_count_filters_cost_a_query_each_per_batch_not_per_lead(web):
    """The filter fields beside the lead row are read for a whole batch at once."""
    pool = bulk_pool("team", 10)
    rule = make_rule(pool=pool, sources=[web])
    _batch_queries(web, 5)  # warm: the configuration is cached
    plain_100 = _batch_queries(web, 100)
    rule.filters = [
        {"field": "owner", "op": "is_empty"},
        {"field": "action_count", "op": "eq", "value": 0},
    ]
    rule.save()
    _batch_queries(web, 5)
    filtered_100 = _batch_queries(web, 100)
    filtered_300 = _batch_queries(web, 300)
    assert filtered_100 - plain_100 <= 1, (plain_100, filtered_100)  # the activity counts
    assert filtered_300 == filtered_100, (filtered_100, filtered_300)  # whatever the batch size
