"""The arrival gate (issue 10, decision L13): on a Redis broker a burst of arrivals for agent
routing publishes ONE task per lane, whose batch routes them all; once that task starts,
the next arrival publishes again; a marketplace lead is always published; the broker down
costs nothing more than one attempt (tests/leads/test_broker_outage.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from distribution.models import Workflow
from distribution.tasks import distribute_lead
from leads.models import Lead
from tests.acceptance.test_worker_end_to_end import broker_key, flush_broker
from tests.conftest import celery_publishing_to
from tests.factories import CampaignFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _post(api: Any, token: str, n: int, tag: str = "a", **extra: Any) -> list[int]:
    ids = []
    for i in range(n):
        body = {"first_name": "Gate", "email": f"g{i}-{tag}@example.com", **extra}
        response = api.post("/api/v1/leads", body, token=token)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def _queued(broker: Any, lane: str) -> list[int]:
    """The lead ids of the distribute_lead messages waiting in LANE's queue."""
    import base64
    import json

    ids = []
    for raw in broker.lrange(broker_key(lane), 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        ids.append(args[0])
    return ids


def test_a_burst_of_arrivals_is_one_message_whose_batch_routes_them_all(api, agents, web):
    import redis

    a, b = agents(2)
    make_rule(pool=make_pool([a, b], cap_day=1000), sources=[web])
    broker = redis.Redis.from_url(settings.TEST_REDIS_URL)
    flush_broker()
    with celery_publishing_to(settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX):
        burst = _post(api, web.plain_token, 12)
        assert _queued(broker, "live") == [burst[0]]  # one message for the burst

        (message,) = _queued(broker, "live")
        broker.delete(broker_key("live"))  # the worker takes it ...
        assert distribute_lead(message) == "assigned"  # ... and its batch routes them all
        assert set(Lead.objects.filter(pk__in=burst).values_list("status", flat=True)) == {
            "assigned"
        }

        later = _post(api, web.plain_token, 2, tag="later")
        assert _queued(broker, "live") == [later[0]]  # the task started: the gate opened
    flush_broker()


def test_a_lead_the_marketplace_sells_is_always_published(api, web):
    import redis

    sold = CampaignFactory(slug="sold")
    Workflow.objects.create(campaign=sold)
    broker = redis.Redis.from_url(settings.TEST_REDIS_URL)
    flush_broker()
    with celery_publishing_to(settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX):
        routed = _post(api, web.plain_token, 3)
        sales = _post(api, web.plain_token, 3, tag="sold", campaign="sold")
        assert sorted(_queued(broker, "live")) == [routed[0], *sales]
    flush_broker()
