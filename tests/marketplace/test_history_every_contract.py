"""Every contract's line kept on a marketplace attempt (issue 11, item 10): the readable
head stores 100 lines; the compact form every one, and the lead's distribute page (its
distribution history) answers "why not me?" for the 101st contract too."""

from __future__ import annotations

import pytest

from distribution.admin.marketplace import distribute_url
from distribution.models import DistributionAttempt
from distribution.selectors.history import attempt_candidates, why_not

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db


def test_every_contract_has_its_line_beyond_the_first_hundred(
    workflow, contract, new_lead, manager, client
):
    workflow(rules=[("qs", 1)], max_multiplication=1)
    names = [contract(name=f"k{n:03d}", quality_score=n % 10).name for n in range(110)]
    lead = new_lead()
    arrive(lead)
    (winner,) = sold_to(lead)
    attempt = DistributionAttempt.objects.filter(lead=lead).latest("id")
    assert len(attempt.candidates) == 100  # the readable head, as before

    lines = attempt_candidates(attempt)
    assert sorted(line["contract"] for line in lines) == sorted(names)
    assert lines[0]["contract"] == winner and lines[0]["reason"] is None
    assert {line["reason"] for line in lines[1:]} == {"take_reached"}
    assert [line["rank"] for line in lines] == list(range(1, 111))  # the QS order, all of it
    head = {c["contract"] for c in attempt.candidates}
    last = next(line for line in reversed(lines) if line["contract"] not in head)
    assert why_not(attempt, last["contract"]) == [last]

    client.force_login(manager)
    page = client.get(distribute_url(lead.pk)).content.decode()
    assert "Every candidate (110): why not me?" in page
    assert f"<td>{last['contract']}</td>" in page
