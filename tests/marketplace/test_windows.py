"""Auto-distribution windows with a moving clock: rechecks, caps that reset, the end of a
window, pause and stop, the Beat task and the `recheck_windows` command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command

from distribution import services
from distribution.errors import MarketplaceError
from distribution.models import DistributionAttempt, DistributionWindow
from distribution.periodic import PERIODIC_TASKS
from distribution.tasks.marketplace import recheck_windows

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # a Monday evening


@pytest.fixture
def window_flow(workflow):
    return workflow(
        rules=[("qs", 5)],
        mode="window",
        max_multiplication=3,
        window_duration=timedelta(hours=6),
        recheck_every=timedelta(minutes=15),
    )


def test_recheck_finds_a_contract_whose_daily_cap_reset(window_flow, contract, new_lead):
    capped = contract(name="capped", cap_day=1)
    with time_machine.travel(T0, tick=False):
        arrive(new_lead())  # uses today's only slot
        lead = new_lead()
        assert arrive(lead).outcome == "no_eligible_contracts"
        assert lead.__class__.objects.get(pk=lead.pk).status == "waiting"
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        services.windows_recheck_due()
        assert sold_to(lead) == []  # still Monday: the cap holds
    with time_machine.travel(T0 + timedelta(hours=2, minutes=1), tick=False):
        services.windows_recheck_due()  # Tuesday 00:01: a new day, a new slot
    assert sold_to(lead) == [capped.name]
    lead.refresh_from_db()
    assert lead.status == "distributed"


def test_recheck_only_runs_when_due(window_flow, contract, new_lead):
    with time_machine.travel(T0, tick=False):
        lead = new_lead()
        arrive(lead)
        contract()
    with time_machine.travel(T0 + timedelta(minutes=14), tick=False):
        assert services.windows_recheck_due() == {}
        assert sold_to(lead) == []
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        assert services.windows_recheck_due() == {"distributed": 1}


def test_window_ends_and_the_unsold_lead_waits_for_a_manager(window_flow, contract, new_lead):
    with time_machine.travel(T0, tick=False):
        lead = new_lead()
        arrive(lead)
    for minutes in range(15, 6 * 60 + 1, 15):
        with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
            services.windows_recheck_due()
    window = DistributionWindow.objects.get(lead=lead)
    assert (window.status, window.close_reason) == ("finished", "ended")
    assert window.checks == 1 + 23  # arrival, then every 15 minutes until 6 h
    lead.refresh_from_db()
    assert (lead.status, lead.distribution_state) == ("waiting", "done")
    with time_machine.travel(T0 + timedelta(hours=7), tick=False):
        contract()
        services.windows_recheck_due()
    assert sold_to(lead) == []  # an ended window checks no more


def test_window_finishes_once_the_multiplication_is_reached(window_flow, contract, new_lead):
    with time_machine.travel(T0, tick=False):
        contract(name="a", quality_score=3)
        lead = new_lead()
        arrive(lead)
        contract(name="b", quality_score=2)
        contract(name="c", quality_score=1)
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        services.windows_recheck_due()
    assert sold_to(lead) == ["a", "b", "c"]
    window = DistributionWindow.objects.get(lead=lead)
    assert (window.status, window.close_reason) == ("finished", "multiplication_reached")
    assert DistributionAttempt.objects.filter(lead=lead, trigger="recheck").count() == 1


def test_paused_window_is_not_rechecked_and_resumes_at_once(
    window_flow, contract, new_lead, manager
):
    with time_machine.travel(T0, tick=False):
        lead = new_lead()
        arrive(lead)
        window = DistributionWindow.objects.get(lead=lead)
        services.window_pause(window_id=window.pk, actor=manager)
        contract(name="new")
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        services.windows_recheck_due()
        assert sold_to(lead) == []
        services.window_resume(window_id=window.pk, actor=manager)
        services.windows_recheck_due()
    assert sold_to(lead) == ["new"]


def test_stopped_window_is_never_rechecked(window_flow, contract, new_lead, manager):
    with time_machine.travel(T0, tick=False):
        lead = new_lead()
        arrive(lead)
        window = DistributionWindow.objects.get(lead=lead)
        services.window_stop(window_id=window.pk, actor=manager)
        contract()
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        services.windows_recheck_due()
    assert sold_to(lead) == []
    lead.refresh_from_db()
    assert lead.status == "waiting"
    with pytest.raises(MarketplaceError):
        services.window_resume(window_id=window.pk, actor=manager)


def test_edit_moves_the_end_and_the_interval(window_flow, contract, new_lead, manager):
    with time_machine.travel(T0, tick=False):
        lead = new_lead()
        arrive(lead)
        window = DistributionWindow.objects.get(lead=lead)
        services.window_edit(
            window_id=window.pk,
            actor=manager,
            ends_at=T0 + timedelta(minutes=20),
            every=timedelta(minutes=5),
        )
        contract()
        with pytest.raises(MarketplaceError):
            services.window_edit(
                window_id=window.pk, actor=manager, ends_at=T0 - timedelta(minutes=1)
            )
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert services.windows_recheck_due() == {"distributed": 1}


def test_a_second_window_is_refused_while_one_is_open(window_flow, new_lead, manager):
    with time_machine.travel(T0, tick=False):
        lead = new_lead()
        arrive(lead)
        with pytest.raises(MarketplaceError) as refused:
            services.window_open(lead_id=lead.pk, actor=manager)
    assert refused.value.code == "window_open"


def test_recheck_windows_command_and_beat_task(window_flow, contract, new_lead):
    with time_machine.travel(T0, tick=False):
        leads = [new_lead() for _ in range(3)]
        for lead in leads:
            arrive(lead)
        contract(price=Decimal("10"))
    out = []
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        from io import StringIO

        buffer = StringIO()
        call_command("recheck_windows", stdout=buffer)
        out.append(buffer.getvalue())
        assert recheck_windows.delay().get() == {}  # the task: nothing left due
    assert "3 window(s) rechecked: 3 distributed." in out[0]
    assert all(sold_to(lead) for lead in leads)
    assert any(
        p.task == "distribution.recheck_windows" and p.every_seconds == 60 for p in PERIODIC_TASKS
    )


def test_cap_windows_follow_each_contracts_time_zone(workflow, contract, new_lead):
    workflow(rules=[("qs", 5)])
    contract(name="utc", cap_day=1, timezone="UTC")
    contract(name="auckland", cap_day=1, timezone="Pacific/Auckland")  # UTC+13 in March
    with time_machine.travel(datetime(2026, 3, 3, 10, 30, tzinfo=UTC), tick=False):
        first = new_lead()
        arrive(first)  # both sell: Tuesday in UTC, Tuesday 23:30 in Auckland
    with time_machine.travel(datetime(2026, 3, 3, 11, 30, tzinfo=UTC), tick=False):
        second = new_lead()
        arrive(second)  # still Tuesday in UTC; already Wednesday in Auckland
    assert sorted(sold_to(first)) == ["auckland", "utc"]
    assert sold_to(second) == ["auckland"]
