"""The managers' dashboard: queue counts and chart data a manager would read."""

from __future__ import annotations

import json

import pytest

from tests.factories import LeadFactory, SourceFactory, UserFactory

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
