"""The managers' dashboard: queue counts and chart data a manager would read."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.utils import timezone

from distribution.models import Assignment, Offer
from tests.factories import AgentFactory, LeadFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client):
    manager = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(manager)
    return client


def _figures(response) -> dict:
    html = response.content.decode()
    start = html.index('id="dashboard-figures"')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_dashboard_counts_the_queues_and_the_leads_per_source(manager_client):
    web, zillow = SourceFactory(name="Web"), SourceFactory(name="Zillow")
    LeadFactory.create_batch(3, source=web, unassigned=True)
    LeadFactory.create_batch(2, source=zillow, status="exception", distribution_state="done")
    response = manager_client.get("/admin/dashboard/")
    assert response.status_code == 200
    figures = _figures(response)
    assert figures["queues"]["unassigned"] == 3
    assert figures["queues"]["exception"] == 2
    assert figures["sources"] == {"Web": 3, "Zillow": 2}
    assert sum(figures["series"]["queued"]) == 5
    assert "Lead Assignment queue" in response.content.decode()


def test_dashboard_query_count_does_not_grow_with_leads(
    manager_client, django_assert_max_num_queries
):
    LeadFactory.create_batch(40, unassigned=True)
    with django_assert_max_num_queries(15):
        assert manager_client.get("/admin/dashboard/").status_code == 200


def test_dashboard_needs_a_staff_login(client):
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_dashboard_shows_speed_to_lead_per_hour_and_the_pipeline_lag(manager_client):
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    arrived = now - dt.timedelta(hours=2)
    agent = AgentFactory()
    for wait in (4, 8, 20):  # offered after 4 s and 8 s, assigned after 20 s
        lead = LeadFactory(created_at=arrived, status="assigned", distribution_state="done")
        if wait < 20:
            Offer.objects.create(
                lead=lead, agent=agent, created_at=arrived + dt.timedelta(seconds=wait)
            )
        else:
            Assignment.objects.create(
                lead=lead,
                agent=agent,
                method="auto",
                created_at=arrived + dt.timedelta(seconds=wait),
            )
    LeadFactory(created_at=now - dt.timedelta(seconds=200))  # pending for 200 s

    with time_machine.travel(now, tick=False):
        response = manager_client.get("/admin/dashboard/")

    figures = _figures(response)
    speed = figures["speed"]
    assert len(speed["labels"]) == 24
    hour = timezone.localtime(arrived).strftime("%d %b %H:00")
    row = next(r for r in speed["rows"] if r["hour"] == hour)
    assert row == {"hour": hour, "leads": 3, "reached": 3, "p50": 8.0, "p90": 17.6}
    assert speed["p50"][speed["labels"].index(hour)] == 8.0
    html = response.content.decode()
    assert "Speed to lead" in html and "<td>17.6</td>" in html
    assert figures["pipeline"]["pending"]["oldest_age_s"] == 200.0
    assert "pending" in figures["pipeline"]["failures"]  # past the 120 s threshold
    assert "Oldest pending lead (1 pending)" in html
