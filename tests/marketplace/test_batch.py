"""Batch-optimal workflows: leads wait in their windows and are allocated together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from distribution import services
from distribution.models import DistributionAttempt, DistributionWindow, OutboundLead
from tests.factories.marketplace import GRONINGEN, LocationFactory

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def test_batch_allocation_beats_arrival_order_under_a_cap(workflow, contract, new_lead):
    workflow(
        rules=[("qs", 1)],
        mode="window",
        batch_optimal=True,
        max_multiplication=1,
        window_duration=timedelta(hours=1),
        recheck_every=timedelta(minutes=5),
    )
    contract(name="anywhere", price=Decimal("10"), cap_day=1)
    local = contract(name="amsterdam-only", price=Decimal("9"), radius_km=20)
    LocationFactory(company=local.company)
    with time_machine.travel(T0, tick=False):
        first = new_lead()  # Amsterdam: both contracts may buy it
        second = new_lead(latitude=GRONINGEN[0], longitude=GRONINGEN[1])  # only "anywhere"
        assert arrive(first).outcome == "waiting_for_batch"
        assert arrive(second).outcome == "waiting_for_batch"
        assert not OutboundLead.objects.exists()
        counts = services.windows_recheck_due()
    # Arrival order would sell the first lead to "anywhere" (10) and leave the second
    # unsold; the batch sells both (19).
    assert sold_to(first) == ["amsterdam-only"] and sold_to(second) == ["anywhere"]
    assert counts == {"distributed": 2}
    for lead in (first, second):
        window = DistributionWindow.objects.get(lead=lead)
        assert (window.status, window.close_reason) == ("finished", "multiplication_reached")
        attempt = DistributionAttempt.objects.filter(lead=lead, trigger="recheck").get()
        assert attempt.outcome == "distributed" and "Batch allocation" in attempt.reason


def test_unsold_batch_leads_keep_waiting_and_windows_end(workflow, contract, new_lead):
    workflow(
        rules=[("qs", 1)],
        mode="window",
        batch_optimal=True,
        max_multiplication=2,
        window_duration=timedelta(minutes=30),
        recheck_every=timedelta(minutes=5),
    )
    contract(name="one-a-day", cap_day=1)
    with time_machine.travel(T0, tick=False):
        leads = [new_lead() for _ in range(3)]
        for lead in leads:
            arrive(lead)
        result = services.windows_recheck_due()
    assert result == {"distributed": 1, "not_distributed": 2}
    windows = DistributionWindow.objects.filter(lead__in=leads)
    assert {w.status for w in windows} == {"active"}
    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        assert services.windows_recheck_due() == {"finished": 3}
    assert {w.status for w in windows.all()} == {"finished"}
