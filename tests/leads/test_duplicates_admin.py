"""Duplicates in the admin (issue 11 item 5): the original lists its duplicates; a manager
merges one into its original (kept; activities and timeline moved; the duplicate closed as
merged; who and when recorded) or unlinks it (an independent lead, recorded)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from leads.models import Activity, Lead, LeadEvent
from leads.services import lead_ingest
from tests.factories import ActivityFactory, AgentFactory, CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(db: None) -> tuple[Lead, Lead]:
    """An original and its duplicate, linked at ingestion (same campaign and e-mail)."""
    solar = CampaignFactory(slug="solar")
    data = {"campaign": solar.slug, "email": "jane@example.com", "first_name": "Jane"}
    original, _ = lead_ingest(source=None, data=data, queue=False)
    duplicate, _ = lead_ingest(
        source=None,
        data={**data, "first_name": "", "phone": "+31 6 1234 5678", "city": "Utrecht"},
        queue=False,
    )
    assert duplicate.duplicate_of_id == original.pk
    return original, duplicate


@pytest.fixture
def manager(client: Any) -> Any:
    user = UserFactory(email="morgan@example.com", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def change_url(lead: Lead) -> str:
    return reverse("admin:leads_lead_change", args=[lead.pk])


def test_the_original_lists_its_duplicates_with_links(pair, manager, client):
    original, duplicate = pair
    page = client.get(change_url(original)).content.decode()
    assert "duplicates of this lead" in page.lower()
    assert f'href="{change_url(duplicate)}"' in page
    assert reverse("admin:leads_lead_merge", args=[duplicate.pk]) in page
    assert reverse("admin:leads_lead_unlink", args=[duplicate.pk]) in page


def test_merging_keeps_the_original_moves_the_work_and_closes_the_duplicate(pair, manager, client):
    original, duplicate = pair
    agent = AgentFactory()
    ActivityFactory(lead=duplicate, agent=agent, kind="call_attempt", note="left a message")
    url = reverse("admin:leads_lead_merge", args=[duplicate.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and b"1 activity" in confirm.content

    response = client.post(url)

    assert response.status_code == 302 and response["Location"] == change_url(original)
    original.refresh_from_db()
    duplicate.refresh_from_db()
    assert Lead.objects.filter(pk=original.pk).exists()  # the original is kept
    assert duplicate.status == "merged" and duplicate.duplicate_of_id == original.pk
    assert list(Activity.objects.filter(lead=original).values_list("note", flat=True)) == [
        "left a message"
    ]
    assert not Activity.objects.filter(lead=duplicate).exists()
    # the duplicate's timeline went along (its "created" and "duplicate linked" events)
    assert original.events.filter(kind="duplicate").exists()
    # blank contact fields of the original filled from the duplicate
    assert (original.first_name, original.phone, original.city) == (
        "Jane",
        "+31 6 1234 5678",
        "Utrecht",
    )
    # who did it and when, on both timelines
    on_original = original.events.get(kind="merged")
    on_duplicate = duplicate.events.get(kind="merged")
    assert on_original.actor == manager and on_duplicate.actor == manager
    assert f"#{duplicate.pk}" in on_original.message and "morgan@example.com" in on_original.message
    assert on_original.created_at is not None
    # the merged lead is listed as merged, not offered for another merge
    page = client.get(change_url(original)).content.decode()
    assert "merged" in page
    assert reverse("admin:leads_lead_merge", args=[duplicate.pk]) not in page


def test_unlinking_makes_the_duplicate_an_independent_lead(pair, manager, client):
    original, duplicate = pair
    assert client.post(reverse("admin:leads_lead_unlink", args=[duplicate.pk])).status_code == 302
    duplicate.refresh_from_db()
    assert duplicate.duplicate_of_id is None and duplicate.status != "merged"
    assert f"#{original.pk}" in duplicate.events.get(kind="unlinked").message
    assert original.events.get(kind="unlinked").actor == manager
    assert change_url(duplicate) not in client.get(change_url(original)).content.decode()


def test_the_bulk_actions_merge_and_unlink_the_selected_duplicates(pair, manager, client):
    original, duplicate = pair
    changelist = reverse("admin:leads_lead_changelist")
    client.post(changelist, {"action": "merge_duplicates", "_selected_action": [duplicate.pk]})
    duplicate.refresh_from_db()
    assert duplicate.status == "merged"
    # a merged lead stays with its original; an original is no duplicate: both refused
    response = client.post(
        changelist,
        {"action": "unlink_duplicates", "_selected_action": [duplicate.pk, original.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert "Unlinked 0 duplicates" in text and "not linked to an original" in text
    duplicate.refresh_from_db()
    assert duplicate.duplicate_of_id == original.pk


def test_an_offered_duplicate_is_not_merged(pair, manager, client):
    _original, duplicate = pair
    Lead.objects.filter(pk=duplicate.pk).update(status="offered")
    response = client.post(reverse("admin:leads_lead_merge", args=[duplicate.pk]), follow=True)
    assert "cannot be merged now" in response.content.decode()
    assert Lead.objects.get(pk=duplicate.pk).status == "offered"


def test_a_staff_user_who_may_only_view_leads_cannot_merge_or_unlink(pair, client):
    _original, duplicate = pair
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_lead"))
    client.force_login(viewer)
    for name in ("admin:leads_lead_merge", "admin:leads_lead_unlink"):
        url = reverse(name, args=[duplicate.pk])
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
    changelist = reverse("admin:leads_lead_changelist")
    assert b"merge_duplicates" not in client.get(changelist).content
    client.post(changelist, {"action": "merge_duplicates", "_selected_action": [duplicate.pk]})
    duplicate.refresh_from_db()
    assert duplicate.status != "merged"
    assert not LeadEvent.objects.filter(kind__in=["merged", "unlinked"]).exists()
