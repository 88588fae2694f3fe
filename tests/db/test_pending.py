"""distribution.db.pending: the fixed SQL claim of pending leads equals the ORM's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from distribution.db import pending
from distribution.models import Workflow
from leads.models import Lead
from tests.db.conftest import instance_values, rolled_back
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
T0 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)


def _claimed(
    twin: Any, ids: list[int] | None, *, limit: int, lane: str | None = None
) -> list[dict[str, Any]]:
    def run() -> list[dict[str, Any]]:
        leads = twin(ids, skip_locked=True, limit=limit, lane=lane)
        return [
            {
                "lead": instance_values(lead),
                "source": instance_values(lead.source) if lead.source_id else None,
                "campaign": instance_values(lead.campaign) if lead.campaign_id else None,
            }
            for lead in leads
        ]

    return rolled_back(run)


@pytest.fixture
def leads() -> list[Lead]:
    web, other = SourceFactory(slug="web"), SourceFactory(slug="other")
    routed, sold = CampaignFactory(slug="routed"), CampaignFactory(slug="sold")
    Workflow.objects.create(campaign=sold)
    made = [
        LeadFactory(source=web, campaign=routed, attributes={"city": "Delft", "n": [1, 2]}),
        LeadFactory(source=other, campaign=None),
        LeadFactory(source=web, campaign=sold),  # sold by the marketplace: not routed
        LeadFactory(source=web, campaign=routed, distribution_state="done"),  # not pending
        LeadFactory(source=web, campaign=None),
        LeadFactory(source=other, campaign=routed),
        LeadFactory(source=web, campaign=routed, lane="bulk"),  # an imported row
    ]
    for i, lead in enumerate(made):  # created in another order than the ids
        Lead.objects.filter(pk=lead.pk).update(created_at=T0 - dt.timedelta(minutes=i % 3 * 7 + i))
    return made


@pytest.mark.parametrize("limit", [2, 100])
def test_pending_leads_lock_twins_claim_the_same_leads(leads: list[Lead], limit: int) -> None:
    postgresql = _claimed(pending._pg, None, limit=limit)
    portable = _claimed(pending._portable, None, limit=limit)
    assert postgresql == portable
    assert len(postgresql) == min(limit, 5)


@pytest.mark.parametrize("lane", ["live", "bulk"])
def test_pending_leads_lock_twins_claim_the_same_of_a_lane(leads: list[Lead], lane: str) -> None:
    postgresql = _claimed(pending._pg, None, limit=100, lane=lane)
    assert postgresql == _claimed(pending._portable, None, limit=100, lane=lane)
    assert len(postgresql) == (4 if lane == "live" else 1)
    assert {row["lead"]["lane"] for row in postgresql} == {lane}


def test_pending_leads_lock_twins_claim_the_same_of_given_ids(leads: list[Lead]) -> None:
    ids = [leads[0].pk, leads[2].pk, leads[3].pk, leads[5].pk]
    postgresql = _claimed(pending._pg, ids, limit=10)
    assert postgresql == _claimed(pending._portable, ids, limit=10)
    assert {row["lead"]["id"] for row in postgresql} == {leads[0].pk, leads[5].pk}


def _stale_claim(twin: Any, *, limit: int) -> tuple[list[int], list[int]]:
    """The ids the twin claims and the ids then stamped with the claim's time."""

    def run() -> tuple[list[int], list[int]]:
        claimed = [
            lead_id
            for lead_id, _lane in twin(cutoff=T0, now=T0 + dt.timedelta(hours=1), limit=limit)
        ]
        stamped = Lead.objects.filter(queued_at=T0 + dt.timedelta(hours=1))
        return claimed, sorted(stamped.values_list("id", flat=True))

    return rolled_back(run)


@pytest.mark.parametrize("limit", [2, 100])
def test_stale_pending_claim_twins_claim_and_stamp_the_same_leads(limit: int) -> None:
    old, recent = T0 - dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=5)
    rows = [
        ({}, old, None),  # stale: claimed
        ({}, old, old),  # queued before the window: claimed
        ({}, old, recent),  # queued within the window: in flight
        ({}, recent, None),  # touched within the window
        ({"distribution_state": "unqueued"}, old, None),  # imported, not to distribute
        ({"distribution_state": "active"}, old, None),
        ({}, old - dt.timedelta(minutes=1), None),  # stale, the oldest
    ]
    made = []
    for i, (fields, updated, queued) in enumerate(rows):
        lead = LeadFactory(**fields)
        Lead.objects.filter(pk=lead.pk).update(
            updated_at=updated, queued_at=queued, created_at=T0 - dt.timedelta(minutes=i)
        )
        made.append(lead.pk)

    postgresql = _stale_claim(pending._pg_stale, limit=limit)
    portable = _stale_claim(pending._portable_stale, limit=limit)

    assert postgresql == portable
    expected = sorted([made[6], made[1]] if limit == 2 else [made[0], made[1], made[6]])
    assert postgresql == (expected, expected)
