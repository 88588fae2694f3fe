"""distribution.db.bulk: the one-statement / COPY writes equal Django's bulk operations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import time_machine

from accounts.models import AgentProfile, User
from distribution.db import bulk
from distribution.db.bulk import RowsUpdate
from distribution.engine.types import RuleTrial
from distribution.models import DistributionAttempt
from distribution.services.history import trial_lines
from distribution.services.writes import LEAD_UPDATE_FIELDS, new_attempt, new_event
from leads.models import Lead, LeadEvent
from tests.db.conftest import rolled_back, row_values
from tests.factories import AgentFactory, LeadFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
NOW = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)
Twin = Callable[..., None]


def _effects(twin: Twin, n_leads: int, *, batch: bool) -> dict[str, Any]:
    """Route N_LEADS leads by hand through TWIN; the rows it left."""

    def run() -> dict[str, Any]:
        agents = list(User.objects.filter(agent__isnull=False).values_list("pk", flat=True))
        leads = list(Lead.objects.order_by("pk")[:n_leads])
        for i, lead in enumerate(leads):
            lead.status, lead.owner_id = "assigned", agents[i % len(agents)]
            lead.distribution_state, lead.assigned_at = "done", NOW
            lead.exception_reason, lead.updated_at = "", NOW + dt.timedelta(seconds=i)
        turns = [
            AgentProfile(user_id=a, last_turn_at=NOW + dt.timedelta(minutes=i))
            for i, a in enumerate(agents)
        ]
        tried = (RuleTrial(1, "web", True, None, "matched"), RuleTrial(2, "b", False, "x", "y"))
        events = [
            new_event(lead_id=lead.pk, kind="note", message=f"m{lead.pk}", data={"n": [1, None]})
            for lead in leads
        ]
        attempts = [
            new_attempt(
                lead_id=lead.pk,
                trigger="command",
                rule_name="web",
                rules_tried=trial_lines(tried),  # JSON text made in advance (EncodedJSON)
                candidates=[{"agent_id": 1, "reason": None}],
                outcome="assigned",
                reason="because",
                duration_ms=1.5,
                created_at=NOW,
            )
            for lead in leads
        ]
        twin(
            [
                RowsUpdate(Lead, leads, LEAD_UPDATE_FIELDS),
                RowsUpdate(AgentProfile, turns, ["last_turn_at"], key="user"),
            ],
            [(LeadEvent, events), (DistributionAttempt, attempts)],
            **({"batch": batch} if twin is bulk._pg else {}),
        )
        return {
            "leads": row_values(Lead),
            "profiles": row_values(AgentProfile),
            "events": row_values(LeadEvent),
            "attempts": row_values(DistributionAttempt),
        }

    with time_machine.travel(NOW, tick=False):
        return rolled_back(run)


@pytest.mark.parametrize(
    ("n_leads", "batch"),
    [(1, False), (bulk.COPY_MIN_ROWS + 5, True), (bulk.COPY_MIN_ROWS + 5, False)],
    ids=["one-lead-one-statement", "batch-by-copy", "many-rows-one-statement"],
)
def test_rows_write_twins_leave_the_same_rows(n_leads: int, batch: bool) -> None:
    for _ in range(3):
        AgentFactory()
    LeadFactory.create_batch(n_leads + 2, unassigned=True)
    postgresql = _effects(bulk._pg, n_leads, batch=batch)
    portable = _effects(bulk._portable, n_leads, batch=batch)
    assert postgresql == portable
    assert len(postgresql["events"]) == len(postgresql["attempts"]) == n_leads
    assert [r["status"] for r in postgresql["leads"]].count("assigned") == n_leads


def test_rows_write_with_nothing_to_write_writes_nothing(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        bulk._pg([RowsUpdate(Lead, [], ["status"])], [(LeadEvent, [])], batch=True)
        bulk._portable([RowsUpdate(Lead, [], ["status"])], [(LeadEvent, [])])
