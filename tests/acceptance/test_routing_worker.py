"""End to end with a real Celery worker on Redis: a posted lead is offered by the worker, the
offer expires through the Beat task sent over the broker, and the lead is re-offered."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from distribution.models import Offer
from distribution.tasks.routing import expire_offers
from tests.acceptance import test_worker_end_to_end as e2e
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
# the real worker on the test database and Redis, as the foundation's end-to-end test runs it
worker = e2e.worker
redis_broker = e2e.redis_broker
wait_for, status_of = e2e.wait_for, e2e.status_of


def open_offer_agent(lead_id: int) -> int | None:
    offer = Offer.objects.filter(lead_id=lead_id, status="open").first()
    return offer.agent_id if offer else None


def test_a_posted_lead_is_offered_then_re_offered_when_the_offer_expires(api, redis_broker, worker):
    source = SourceFactory(slug="e2e-web")
    first, second = AgentFactory(), AgentFactory()
    make_rule(
        pool=make_pool([first, second]), sources=[source], claim_timeout=dt.timedelta(seconds=2)
    )

    response = api.post(
        "/api/v1/leads",
        {"first_name": "Eve", "email": "eve@example.com", "external_id": "e2e-offer"},
        token=source.plain_token,
    )
    assert response.status_code == 201
    lead_id = response.json()["id"]
    wait_for(
        lambda: open_offer_agent(lead_id) == first.pk,
        worker,
        "the worker offering the lead to the first agent",
    )
    assert status_of(lead_id) == "offered"

    expires_at = Offer.objects.get(lead_id=lead_id, status="open").expires_at
    while Offer.objects.get(lead_id=lead_id, agent=first).expires_at > dt.datetime.now(dt.UTC):
        time.sleep(0.2)  # the claim time runs out (2 s)
    expire_offers.delay()  # what Beat sends every 5 s

    wait_for(
        lambda: open_offer_agent(lead_id) == second.pk,
        worker,
        "the worker expiring the offer and offering the lead to the next agent",
    )
    assert Offer.objects.get(lead_id=lead_id, agent=first).status == "expired"
    assert expires_at is not None
