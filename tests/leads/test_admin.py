"""The Lead admin: a changelist whose cost does not grow with the leads, search, filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AgentFactory, CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/leads/lead/"
# session, user, the source and campaign filter choices, the count, the page of leads (with
# sources, campaigns and owners joined), the date hierarchy (2): 8 today, a little headroom
# for another filter; a fixed number however many leads there are
QUERY_BUDGET = 10


def make_leads(n: int, start: int = 0) -> None:
    """N leads, each with its own source, campaign and owner (so an N+1 would show)."""
    for i in range(start, start + n):
        LeadFactory(
            source=SourceFactory(slug=f"src-{i}"),
            campaign=CampaignFactory(slug=f"camp-{i}"),
            owner=AgentFactory(email=f"owner{i}@example.com", display_name=f"Owner {i}"),
            assigned=True,
        )


def changelist_queries(admin_client, url: str = CHANGELIST) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_changelist_costs_the_same_for_10_and_60_leads(
    admin_client, django_assert_max_num_queries
):
    make_leads(10)
    with django_assert_max_num_queries(QUERY_BUDGET):
        response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    with_10 = changelist_queries(admin_client)

    make_leads(50, start=10)
    with django_assert_max_num_queries(QUERY_BUDGET):
        response = admin_client.get(CHANGELIST)
    with_60 = changelist_queries(admin_client)

    assert with_60 == with_10
    page = response.content.decode()
    assert page.count('class="action-select"') == 50  # one page of 50
    assert "Owner 59" in page and "src-59" in page.lower() and "Camp-59" in page


def test_search_finds_a_lead_by_name_email_phone_or_external_id(admin_client):
    jane = LeadFactory(
        first_name="Janet",
        last_name="Quist",
        email="janet@quist.example",
        phone="+1 212 555 0199",
        external_id="VENDOR-77",
    )
    LeadFactory.create_batch(3)

    for term in ("Quist", "janet@quist.example", "555 0199", "VENDOR-77"):
        response = admin_client.get(CHANGELIST, {"q": term})
        shown = [lead.pk for lead in response.context["cl"].result_list]
        assert shown == [jane.pk], term
    by_id = admin_client.get(CHANGELIST, {"q": str(jane.pk)}).context["cl"].result_list
    assert jane.pk in [lead.pk for lead in by_id]


def test_filters_narrow_the_list(admin_client):
    web = SourceFactory(slug="web")
    solar = CampaignFactory(slug="solar")
    a = LeadFactory(source=web, campaign=solar, unassigned=True)
    b = LeadFactory(source=web, assigned=True)
    c = LeadFactory(campaign=solar)
    old = LeadFactory(unassigned=True)
    type(old).objects.filter(pk=old.pk).update(
        status_changed_at=timezone.now() - timedelta(hours=3)
    )

    def shown(**params: object) -> set[int]:
        response = admin_client.get(CHANGELIST, params)
        assert response.status_code == 200
        return {lead.pk for lead in response.context["cl"].result_list}

    assert shown(status__exact="unassigned") == {a.pk, old.pk}
    assert shown(source__id__exact=web.pk) == {a.pk, b.pk}
    assert shown(campaign__id__exact=solar.pk) == {a.pk, c.pk}
    assert shown(distribution_state__exact="pending") == {c.pk}
    assert shown(waiting="1h") == {old.pk}
    assert shown(waiting="1d") == set()


def test_the_lead_page_shows_the_lead_its_activities_and_timeline(admin_client, agent):
    lead = LeadFactory(first_name="Petra", last_name="Visser", owner=agent, assigned=True)
    lead.activities.create(kind="call_attempt", agent=agent, note="voicemail left")
    lead.events.create(kind="created", message="from the web form")

    response = admin_client.get(f"/admin/leads/lead/{lead.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Petra" in page and "Visser" in page
    assert "voicemail left" in page
    assert "from the web form" in page


def test_the_admin_requires_a_staff_login(client, agent):
    lead = LeadFactory()

    for url in (CHANGELIST, f"/admin/leads/lead/{lead.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")

    client.force_login(agent)  # an agent without staff rights
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
