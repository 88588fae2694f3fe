"""leads.db.lead_insert: the one-statement insert on PostgreSQL writes what the ORM twin
writes — the lead, its duplicate link, its timeline events — and refuses a repeat."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import IntegrityError

from leads import db
from leads.models import Lead, LeadEvent, LeadStatus
from tests.db.conftest import rolled_back, row_values
from tests.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
T0 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)
VOLATILE = ("id", "pin", "updated_at", "lead_id", "duplicate_of_id")


def _new(source: Any, campaign: Any, **values: Any) -> Lead:
    lead = Lead(source=source, campaign=campaign, created_at=T0, status_changed_at=T0, pin="123456")
    for key, value in values.items():
        setattr(lead, key, value)
    lead.normalise()
    return lead


def _written(twin: Any, make: Any) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        lead = make()
        inserted = twin(lead, created_message="from Web")
        events = [
            {**e, "message": e["message"].replace(f"#{lead.duplicate_of_id}", "#ORIGINAL")}
            for e in row_values(LeadEvent, without=("id", "lead_id", "created_at"))
            if lead.pk is not None
        ]
        return {
            "inserted": inserted,
            "original": lead.duplicate_of_id,
            "leads": row_values(Lead, without=("id", "pin", "updated_at")),
            "events": sorted(
                (
                    {
                        **e,
                        "data": {k: "ORIGINAL" for k in e["data"]},
                    }
                    for e in events
                ),
                key=repr,
            ),
        }

    return rolled_back(run)


@pytest.mark.parametrize(
    "case",
    ["duplicate by e-mail", "duplicate by phone", "no campaign", "closed original", "repeat"],
)
def test_the_one_statement_insert_equals_the_orm(case: str) -> None:
    web = SourceFactory(slug="web")
    solar = CampaignFactory(slug="solar")
    original = LeadFactory(
        source=web, campaign=solar, email="jane@example.com", phone="+31 6 1234 5678"
    )
    LeadFactory(source=web, campaign=solar, email="old@example.com", status=LeadStatus.LOST)
    LeadFactory(source=web, campaign=solar, external_id="form-9")
    values: dict[str, Any] = {
        "duplicate by e-mail": {"email": "JANE@example.com", "external_id": "a"},
        "duplicate by phone": {"phone": "06 1234 5678", "external_id": "b"},
        "no campaign": {"email": "jane@example.com", "external_id": "c"},
        "closed original": {"email": "old@example.com", "external_id": "d"},
        "repeat": {"email": "new@example.com", "external_id": "form-9"},
    }[case]
    campaign = None if case == "no campaign" else solar

    def make() -> Lead:
        return _new(web, campaign, **values)

    def portable(lead: Lead, *, created_message: str) -> bool:
        try:
            return db._portable_insert(lead, created_message=created_message)
        except IntegrityError:  # the portable twin's repeat: the constraint refuses it
            return False

    pg, orm = _written(db._pg_insert, make), _written(portable, make)
    assert pg == orm
    expect_original = original.pk if case.startswith("duplicate") else None
    assert pg["original"] == expect_original
    assert pg["inserted"] is (case != "repeat")
