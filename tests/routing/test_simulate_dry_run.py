"""Simulate is the Router in dry-run mode (issue 9, item 5): the loop of live routing, so a
simulation sees automations, sticky owners, caps and turns as `distribute_pending` does; it
replays every lead (or --limit), in chunks, with running cap counts, and writes nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AgentProfile
from distribution.models import Assignment, Automation, DistributionAttempt, Notice, Offer
from distribution.services import simulate
from distribution.services.simulate import Simulation, rule_simulate
from leads.models import Activity, Lead, LeadEvent
from tests.factories import CampaignFactory, LeadFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
WRITTEN = (Assignment, Offer, Notice, DistributionAttempt, LeadEvent, Activity)


def pending_lead(at: dt.datetime, **fields: Any) -> Lead:
    with time_machine.travel(at, tick=False):
        return LeadFactory(**fields)


def test_simulated_owners_equal_what_distribute_pending_then_does(agents, post, web):
    """An automation, a sticky-owner rule, caps and round-robin turns, all in one replay."""
    a, b, vip = agents(3)
    solar = CampaignFactory(slug="solar")
    make_rule(pool=make_pool([a, b], cap_day=2), sources=[web], sticky_owner=True)
    Automation.objects.create(
        name="globex",
        action="user",
        trigger="created",
        target_user=vip,
        filters=[{"field": "company_name", "op": "eq", "value": "Globex"}],
    )
    with time_machine.travel(MONDAY_10 - dt.timedelta(days=2), tick=False):
        first = post(email="same@example.com", campaign="solar")  # before the replay
    assert first.owner == a
    start = MONDAY_10 - dt.timedelta(hours=1)
    kinds: list[dict[str, Any]] = [
        {},
        {"company_name": "Globex"},  # the automation sends it to the VIP
        {"email": "same@example.com", "duplicate_of": first},  # sticky: to the first's owner
        {},
        {},
        {},  # both members at their day cap by now
        {"company_name": "Globex"},
    ]
    leads = [
        pending_lead(start + dt.timedelta(minutes=5 * i), source=web, campaign=solar, **kind)
        for i, kind in enumerate(kinds)
    ]
    with time_machine.travel(MONDAY_10, tick=False):
        result = rule_simulate(days=1)
        call_command("distribute_pending", "--quiet")
    simulated = {d["lead"]: d["owner"] for d in result["decisions"]}
    assert list(simulated) == [lead.pk for lead in leads]
    live = {
        lead.pk: lead.owner.email if lead.owner else None
        for lead in Lead.objects.filter(pk__in=simulated).select_related("owner")
    }
    assert simulated == live
    assert [simulated[lead.pk] for lead in leads] == [
        b.email,
        vip.email,
        a.email,
        b.email,
        a.email,
        None,
        vip.email,
    ]
    assert result["decisions"][5]["status"] == "exception"


def _database_state() -> tuple[Any, ...]:
    counts = tuple(m.objects.count() for m in WRITTEN)
    leads = list(Lead.objects.order_by("pk").values())
    turns = list(AgentProfile.objects.order_by("pk").values_list("user_id", "last_turn_at"))
    return counts, leads, turns


def test_a_simulation_writes_nothing_locks_nothing_and_sends_nothing(
    agents, post, web, django_capture_on_commit_callbacks
):
    a, b, c = agents(3)
    make_rule(pool=make_pool([a, b]), sources=[web], enabled=False, initial_activity="new_lead")
    make_rule(
        "ring",
        pool=make_pool([b, c], name="ring"),
        sources=[web],
        priority=20,
        strategy="broadcast",
        claim_timeout=dt.timedelta(minutes=5),
        filters=[{"field": "city", "op": "eq", "value": "Delft"}],
    )
    with time_machine.travel(MONDAY_10, tick=False):
        post(city="Delft")
        post(city="Leiden")
        pending_lead(MONDAY_10 + dt.timedelta(minutes=1), source=web)
    before = _database_state()
    with (
        time_machine.travel(MONDAY_10 + dt.timedelta(hours=1), tick=False),
        django_capture_on_commit_callbacks() as callbacks,
        CaptureQueriesContext(connection) as queries,
    ):
        result = rule_simulate(days=1)
        call_command("simulate", "--days", "1", "--json", stdout=io.StringIO())
    assert [d["status"] for d in result["decisions"]] == ["offered", "unassigned", "unassigned"]
    assert _database_state() == before
    assert callbacks == []
    statements = " ".join(q["sql"].upper() for q in queries.captured_queries)
    for word in ("INSERT", "UPDATE ", "DELETE", "COPY", "LOCK", "FOR UPDATE"):
        assert word not in statements


def test_every_lead_is_replayed_in_chunks_and_limit_caps_the_replay(agents, web, monkeypatch):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web])
    leads = [pending_lead(MONDAY_10 + dt.timedelta(minutes=i), source=web) for i in range(7)]
    # two leads at the same instant: the keyset (created_at, id) keeps both
    leads.append(pending_lead(MONDAY_10 + dt.timedelta(minutes=6), source=web))
    monkeypatch.setattr(simulate, "CHUNK", 3)
    with time_machine.travel(MONDAY_10 + dt.timedelta(hours=1), tick=False):
        everything = rule_simulate(days=1)
        capped = rule_simulate(days=1, limit=5)
    assert [d["lead"] for d in everything["decisions"]] == [lead.pk for lead in leads]
    assert [d["lead"] for d in capped["decisions"]] == [lead.pk for lead in leads[:5]]
    assert everything["totals"][a.email]["would_receive"] == 8


def test_running_cap_counts_start_a_new_window_as_the_replay_moves_on(agents, web):
    a, b = agents(2)
    make_rule(pool=make_pool([a], cap_day=1, cap_hour=1), sources=[web], default_agent=b)
    times = [
        MONDAY_10,
        MONDAY_10 + dt.timedelta(minutes=30),  # a: hour (and day) cap reached → default agent
        MONDAY_10 + dt.timedelta(hours=2),  # a: a new hour, but the day cap still holds
        MONDAY_10 + dt.timedelta(days=1),  # a new day
    ]
    for at in times:
        pending_lead(at, source=web)
    with time_machine.travel(MONDAY_10 + dt.timedelta(days=1, hours=1), tick=False):
        result = rule_simulate(days=3)
    assert [d["owner"] for d in result["decisions"]] == [a.email, b.email, b.email, a.email]


def test_the_command_streams_the_design_json_with_a_limit(agents, web, capsys):
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], enabled=False)
    leads = [pending_lead(MONDAY_10 + dt.timedelta(minutes=i), source=web) for i in range(3)]
    with time_machine.travel(MONDAY_10 + dt.timedelta(hours=1), tick=False):
        call_command("simulate", "--rule", rule.name, "--days", "1", "--limit", "2", "--json")
    doc = json.loads(capsys.readouterr().out)
    assert [d["lead"] for d in doc["decisions"]] == [lead.pk for lead in leads[:2]]
    # DESIGN §7's keys, and (issue 11, added) what happened and whether the replay differs
    assert set(doc["decisions"][0]) == {
        "lead",
        "rule",
        "owner",
        "status",
        "candidates",
        "actual",
        "differs",
    }
    assert doc["decisions"][0]["actual"] == {"owner": None, "status": "pending", "rule": None}
    assert doc["decisions"][0]["differs"] is True
    assert doc["totals"] == {a.email: {"would_receive": 2, "cap": None, "received": 0}}


def test_a_simulation_streams_its_decisions(agents, web):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web])
    for i in range(3):
        pending_lead(MONDAY_10 + dt.timedelta(minutes=i), source=web)
    with time_machine.travel(MONDAY_10 + dt.timedelta(hours=1), tick=False):
        simulation = Simulation(days=1)
        stream = simulation.decisions()
        assert next(stream)["owner"] == a.email
        assert len(list(stream)) == 2
    assert simulation.totals()[a.email]["would_receive"] == 3


def test_the_admin_page_replays_every_lead_and_lists_the_first_ones(
    agents, web, client, monkeypatch
):
    from distribution.admin import routing as routing_admin
    from tests.factories import UserFactory

    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web])
    for i in range(5):
        pending_lead(MONDAY_10 + dt.timedelta(minutes=i), source=web)
    monkeypatch.setattr(routing_admin, "SIMULATE_SHOWN", 2)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with time_machine.travel(MONDAY_10 + dt.timedelta(hours=1), tick=False):
        page = client.get(f"/admin/distribution/rule/simulate/?rule={rule.pk}&days=1")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Decisions (the first 2 of 5)" in text
    assert len(re.findall(r"/admin/leads/lead/\d+/change/", text)) == 2  # two rows listed
    assert f"<td>{a.email}</td><td>5</td>" in text  # the totals count all five
