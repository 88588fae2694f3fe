"""A POST costs what it must (issue 10, lean ingestion): its round trips, its caches of
tokens and campaigns and what invalidates them, and a 201 equal to the stored document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection, transaction

from leads import caches
from leads.models import Campaign, Lead, Source
from tests.factories import CampaignFactory, SourceFactory

LEADS = "/api/v1/leads"


def body(**overrides: Any) -> dict[str, Any]:
    data = {
        "first_name": "Jane",
        "email": "jane@example.com",
        "phone": "+1 212 555 0101",
        "external_id": "form-1",
        "campaign": "solar",
    }
    data.update(overrides)
    return data


@pytest.fixture(autouse=True)
def _fresh_caches() -> Any:
    caches.clear_all()
    yield
    caches.clear_all()


@pytest.fixture
def handed_off(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The leads handed to the broker (the publish itself is stubbed: no broker here)."""
    from distribution.services import queueing

    sent: list[int] = []
    monkeypatch.setattr(
        queueing, "_enqueue", lambda lead_id, trigger="arrival", **_: sent.append(lead_id) or True
    )
    return sent


# --- round trips of a real request (committed: what a web process pays) ----------------


@pytest.mark.django_db(transaction=True)
def test_a_post_costs_its_inserts_and_the_duplicate_check_once_warm(
    api, django_assert_num_queries, handed_off
):
    source = SourceFactory()
    CampaignFactory(slug="solar")
    api.post(
        LEADS,
        body(external_id="warm-up", email="w@example.com", phone=""),
        token=source.plain_token,
    )

    # PostgreSQL: ONE statement — duplicate search, lead insert, timeline insert — outside
    # any transaction (no BEGIN / COMMIT). Elsewhere: duplicate check, then BEGIN, lead
    # insert, timeline insert, COMMIT. Token and campaign cached; no owner / rule /
    # outbound query for the 201.
    pg = connection.vendor == "postgresql"
    with django_assert_num_queries(1 if pg else 5):
        new = api.post(LEADS, body(), token=source.plain_token)
    assert new.status_code == 201
    # a duplicate: the same, the link written with the insert
    with django_assert_num_queries(1 if pg else 5):
        dup = api.post(LEADS, body(external_id="form-2"), token=source.plain_token)
    assert dup.status_code == 201 and dup.json()["duplicate_of"] == new.json()["id"]
    # no campaign: nothing to compare with, the inserts only
    with django_assert_num_queries(1 if pg else 4):
        plain = api.post(LEADS, body(external_id="form-3", campaign=None), token=source.plain_token)
    assert plain.status_code == 201
    # a repeat (200): the insert refused (ON CONFLICT DO NOTHING; elsewhere rolled back),
    # then the stored lead and its real document (outbound; the rule only when it has one)
    with django_assert_num_queries(3 if pg else 6):
        again = api.post(LEADS, body(first_name="Janet"), token=source.plain_token)
    assert again.status_code == 200 and again.json() == new.json()

    ids = [r.json()["id"] for r in (new, dup, plain)]
    assert handed_off[-3:] == ids  # each new lead handed to the broker once, the repeat not
    assert Lead.objects.get(pk=ids[1]).duplicate_of_id == ids[0]


@pytest.mark.django_db
def test_the_201_is_byte_for_byte_the_stored_document(api, source):
    CampaignFactory(slug="solar")
    for overrides in ({}, {"external_id": "form-2"}, {"external_id": "", "campaign": None}):
        created = api.post(LEADS, body(**overrides), token=source.plain_token)
        assert created.status_code == 201
        stored = api.get(f"{LEADS}/{created.json()['id']}", token=source.plain_token)
        # the GET builds the document from the database with every part asked
        assert created.content == stored.content
        assert json.loads(created.content)["outbound"] == []


@pytest.mark.django_db
def test_the_cold_lookups_are_cached_after_the_first_post(api, source, django_assert_num_queries):
    CampaignFactory(slug="solar")
    # savepoint + release here (the test's own transaction), plus token and campaign
    pg = connection.vendor == "postgresql"
    with django_assert_num_queries(5 if pg else 7):
        api.post(LEADS, body(), token=source.plain_token)
    with django_assert_num_queries(3 if pg else 5):
        api.post(LEADS, body(external_id="form-2"), token=source.plain_token)


# --- what invalidates the caches --------------------------------------------------------


@pytest.mark.django_db
def test_a_deactivated_source_is_refused_at_once(api, source):
    assert api.post(LEADS, body(campaign=None), token=source.plain_token).status_code == 201
    source.active = False
    source.save()
    assert (
        api.post(LEADS, body(external_id="2", campaign=None), token=source.plain_token).status_code
        == 401
    )


@pytest.mark.django_db
def test_a_rotated_token_is_refused_at_once_and_the_new_one_accepted(api, source):
    assert api.post(LEADS, body(campaign=None), token=source.plain_token).status_code == 201
    from accounts.tokens import hash_token

    source.token_hash = hash_token("rotated")
    source.save()
    assert (
        api.post(LEADS, body(external_id="2", campaign=None), token=source.plain_token).status_code
        == 401
    )
    assert api.post(LEADS, body(external_id="3", campaign=None), token="rotated").status_code == 201


@pytest.mark.django_db
def test_a_deleted_source_is_refused(api):
    retired = SourceFactory()
    assert api.post(LEADS, body(campaign=None), token=retired.plain_token).status_code == 201
    Lead.objects.filter(source=retired).delete()
    retired.delete()
    assert (
        api.post(LEADS, body(external_id="2", campaign=None), token=retired.plain_token).status_code
        == 401
    )


@pytest.mark.django_db
def test_campaigns_created_renamed_and_deleted_are_seen_at_once(api, source):
    # an unknown slug is not remembered: the campaign created next is accepted
    assert api.post(LEADS, body(), token=source.plain_token).status_code == 422
    solar = CampaignFactory(slug="solar")
    first = api.post(LEADS, body(), token=source.plain_token)
    assert first.status_code == 201 and first.json()["campaign"] == "solar"

    solar.slug = "sun"
    solar.save()
    assert api.post(LEADS, body(external_id="2"), token=source.plain_token).status_code == 422
    renamed = api.post(LEADS, body(external_id="3", campaign="sun"), token=source.plain_token)
    assert renamed.json()["campaign"] == "sun"

    spare = CampaignFactory(slug="spare")
    assert (
        api.post(
            LEADS, body(external_id="4", campaign="spare"), token=source.plain_token
        ).status_code
        == 201
    )
    Lead.objects.filter(campaign=spare).delete()
    spare.delete()
    assert (
        api.post(
            LEADS, body(external_id="5", campaign="spare"), token=source.plain_token
        ).status_code
        == 422
    )


@pytest.mark.django_db
def test_another_process_sees_a_revocation_within_the_bound(api, source, settings):
    """Writes elsewhere (another process, or `QuerySet.update`, which sends no signal) are
    seen once an entry is older than LEADROUTER_INGEST_CACHE_SECONDS."""
    assert api.post(LEADS, body(campaign=None), token=source.plain_token).status_code == 201
    Source.objects.filter(pk=source.pk).update(active=False)  # no signal: as if elsewhere
    assert (
        api.post(LEADS, body(external_id="2", campaign=None), token=source.plain_token).status_code
        == 201
    )
    settings.LEADROUTER_INGEST_CACHE_SECONDS = 0  # the entry is now past the bound
    assert (
        api.post(LEADS, body(external_id="3", campaign=None), token=source.plain_token).status_code
        == 401
    )


def test_a_load_overtaken_by_an_invalidation_is_not_stored():
    cache: caches.LookupCache[str] = caches.LookupCache()

    def load() -> str:
        cache.clear()  # a save committed while the old row was being read
        return "old row"

    assert cache.get("k", load) == "old row"
    assert cache.get("k", lambda: "new row") == "new row"


@pytest.mark.django_db(transaction=True)
def test_a_campaign_deleted_behind_the_cache_is_not_linked(api, handed_off):
    """A campaign deleted by another process while cached here: the insert's foreign key
    refuses it, nothing is stored, and the next POST looks the campaign up again."""
    source = SourceFactory()
    doomed = CampaignFactory(slug="solar")
    assert api.post(LEADS, body(), token=source.plain_token).status_code == 201
    with transaction.atomic():  # elsewhere: no signal reaches this process's cache
        Lead.objects.filter(campaign=doomed).delete()
        Campaign.objects.filter(pk=doomed.pk)._raw_delete(using="default")  # type: ignore[attr-defined]
    count = Lead.objects.count()

    refused = api.post(LEADS, body(external_id="2"), token=source.plain_token)
    assert refused.status_code == 422  # the same answer as an unknown campaign
    assert refused.json()["errors"]["campaign"] == ["unknown campaign 'solar'."]
    assert Lead.objects.count() == count
    assert api.post(LEADS, body(external_id="3"), token=source.plain_token).status_code == 422
