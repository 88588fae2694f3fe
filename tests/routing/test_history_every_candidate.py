"""Issue 11, "Tried as a new user would": "The stored history keeps 10 rejected candidates
per attempt; 'why not me?' for the 11th agent has no answer." Every candidate is kept now,
with its reason, compactly, and the lead's history page answers for each one."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine

from distribution.models import DistributionAttempt
from distribution.selectors.history import attempt_candidates, why_not
from tests.factories import UserFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)


def _rows_of(html: str, email: str) -> list[str]:
    """The table rows of HTML that name EMAIL."""
    return [row for row in re.findall(r"<tr>.*?</tr>", html, re.S) if email in row]


def test_why_not_me_is_answered_for_the_11th_and_every_rejected_agent(agents, post, web, client):
    eligible = agents(3)
    away = agents(14, available=False)
    make_rule(pool=make_pool([*eligible, *away]), sources=[web])
    with time_machine.travel(MONDAY_10, tick=False):
        lead = post()
    assert lead.owner == eligible[0]
    attempt = DistributionAttempt.objects.get(lead=lead)

    # stored: every candidate with its reason (14 rejected, not 10)
    rows = {r["agent"]: r for r in attempt_candidates(attempt)}
    assert len(rows) == 17
    assert all(rows[a.email]["reason"] == "unavailable" for a in away)
    assert [rows[a.email]["rank"] for a in eligible] == [1, 2, 3]
    eleventh = away[10]
    assert why_not(attempt, eleventh.email) == [
        {
            "agent_id": eleventh.pk,
            "agent": eleventh.email,
            "member_id": rows[eleventh.email]["member_id"],
            "rank": None,
            "reason": "unavailable",
            "detail": rows[eleventh.email]["detail"],
        }
    ]

    # shown: the lead's history page (admin) and the attempt's own page
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    lead_page = client.get(f"/admin/leads/lead/{lead.pk}/change/").content.decode()
    attempt_page = client.get(
        f"/admin/distribution/distributionattempt/{attempt.pk}/change/"
    ).content.decode()
    for page in (lead_page, attempt_page):
        assert "Every candidate (17)" in page or page is attempt_page
        for agent in away:
            assert any("unavailable" in row for row in _rows_of(page, agent.email)), agent.email


def test_the_compact_form_is_smaller_than_the_lines_it_replaces(agents, post, web):
    """121 candidates kept in a few kilobytes (packed ids and reason codes, not a line each)."""
    many = agents(120, available=False)
    (ok,) = agents(1)
    make_rule(pool=make_pool([ok, *many]), sources=[web])
    with time_machine.travel(MONDAY_10, tick=False):
        lead = post()
    attempt = DistributionAttempt.objects.get(lead=lead)
    import json

    compact = len(json.dumps(attempt.all_candidates))
    lines = len(json.dumps([dict(r) for r in attempt_candidates(attempt)]))
    assert attempt.all_candidates["codes"] == ["unavailable"]
    assert attempt.all_candidates["n"] == 121
    assert compact * 4 < lines
