"""Issue 11, "Tried as a new user would": "Simulate has no difference against what really
happened in a replay, and there is no 'Simulate' button on a rule's own page simulating the
unsaved form (seed 002 lists the button on the program's tabs)."

A replay now says, per lead, what really happened and whether the simulation differs, and
per agent how many leads it would receive against how many it did; a rule's change page has
a Simulate button that replays the form as edited, and saves nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from distribution.models import Assignment, DistributionAttempt, Notice, Offer, Rule
from distribution.services.simulate import rule_simulate
from leads.models import Activity, Lead, LeadEvent
from tests.factories import UserFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)
LATER = MONDAY_10 + dt.timedelta(hours=1)
WRITTEN = (Assignment, Offer, Notice, DistributionAttempt, LeadEvent, Activity, Rule)


@pytest.fixture
def history(agents, post, web) -> dict[str, Any]:
    """Three leads really routed by round robin to a, b, a; a second pool holds b alone."""
    a, b = agents(2)
    rule = make_rule(pool=make_pool([a, b], name="both"), sources=[web])
    only_b = make_pool([b], name="only-b")
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        leads = []
        for _ in range(3):
            leads.append(post())
            clock.shift(dt.timedelta(minutes=1))
    assert [lead.owner for lead in leads] == [a, b, a]
    return {"a": a, "b": b, "rule": rule, "only_b": only_b, "leads": leads}


def written() -> dict[Any, int]:
    return {m: m.objects.count() for m in WRITTEN}


def test_a_replay_shows_per_lead_what_really_happened_and_where_it_differs(history):
    a, b, rule, leads = history["a"], history["b"], history["rule"], history["leads"]
    with time_machine.travel(LATER, tick=False):
        same = rule_simulate(rule_name=rule.name, days=1)
        changed = rule_simulate(rule_name=rule.name, days=1, changes={"pool": "only-b"})

    # unchanged, the replay is what happened: no difference
    assert [d["actual"]["owner"] for d in same["decisions"]] == [a.email, b.email, a.email]
    assert [d["differs"] for d in same["decisions"]] == [False, False, False]
    assert same["differing"] == 0

    # with the rule's pool changed to b alone: leads 1 and 3 would go to b, not a
    decisions = {d["lead"]: d for d in changed["decisions"]}
    assert [decisions[lead.pk]["owner"] for lead in leads] == [b.email] * 3
    assert [decisions[lead.pk]["actual"] for lead in leads] == [
        {"owner": a.email, "status": "assigned", "rule": rule.name},
        {"owner": b.email, "status": "assigned", "rule": rule.name},
        {"owner": a.email, "status": "assigned", "rule": rule.name},
    ]
    assert [decisions[lead.pk]["differs"] for lead in leads] == [True, False, True]
    assert changed["differing"] == 2
    # per agent: would receive against did receive
    assert changed["totals"][b.email] == {"would_receive": 3, "cap": None, "received": 1}
    assert changed["totals"][a.email] == {"would_receive": 0, "cap": None, "received": 2}


def test_the_command_prints_the_difference_in_text_and_json(history):
    a, b, rule, leads = history["a"], history["b"], history["rule"], history["leads"]
    out = io.StringIO()
    with time_machine.travel(LATER, tick=False):
        call_command(
            "simulate", "--rule", rule.name, "--days", "1", "--set", "pool=only-b", stdout=out
        )
    text = out.getvalue()
    assert f"≠ lead {leads[0].pk}: assigned → {b.email}" in text
    assert f"| actually assigned → {a.email}" in text
    assert f"= lead {leads[1].pk}: assigned → {b.email}" in text
    assert f"{b.email}: would receive 3, did receive 1" in text
    assert f"{a.email}: would receive 0, did receive 2" in text
    assert "3 lead(s) simulated, 2 differ from what happened" in text

    out = io.StringIO()
    with time_machine.travel(LATER, tick=False):
        call_command(
            "simulate",
            "--rule",
            rule.name,
            "--days",
            "1",
            "--set",
            "pool=only-b",
            "--json",
            stdout=out,
        )
    doc = json.loads(out.getvalue())
    first = doc["decisions"][0]
    assert {k: first[k] for k in ("lead", "owner", "status")} == {
        "lead": leads[0].pk,
        "owner": b.email,
        "status": "assigned",
    }
    assert first["actual"] == {"owner": a.email, "status": "assigned", "rule": rule.name}
    assert first["differs"] is True
    assert doc["totals"][a.email]["received"] == 2
    assert doc["differing"] == 2


def test_the_admin_simulate_page_shows_what_happened_beside_the_replay(history, client):
    a, b, rule = history["a"], history["b"], history["rule"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with time_machine.travel(LATER, tick=False):
        page = client.get(
            f"/admin/distribution/rule/simulate/?rule={rule.pk}&days=1&pool={history['only_b'].pk}"
        ).content.decode()
    assert "<strong>2</strong> of 3 lead(s) would go differently" in page
    assert "<th>What happened</th>" in page and "<th>Did receive</th>" in page
    assert page.count("≠ differs") == 2 and page.count("= same") == 1
    assert f"assigned → {a.email} ({rule.name})" in page
    assert f"<td>{b.email}</td><td>3</td><td>1</td>" in page  # would receive 3, did 1
    assert f"<td>{a.email}</td><td>0</td><td>2</td>" in page


def form_data(response: Any) -> dict[str, Any]:
    """What the browser would post from a rendered admin change form, unchanged."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = field.widget.format_value(value) if name != "filters" else value
    return data


def test_the_rule_page_has_a_simulate_button_that_replays_the_unsaved_form(history, client):
    _a, b, rule, leads = history["a"], history["b"], history["rule"], history["leads"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    change = client.get(f"/admin/distribution/rule/{rule.pk}/change/")
    html = change.content.decode()
    simulate_url = f"/admin/distribution/rule/{rule.pk}/simulate/"
    button = re.search(r"<button[^>]*formaction=\"([^\"]+)\"[^>]*>Simulate</button>", html)
    assert button is not None and button.group(1) == simulate_url

    # the form as edited: pool changed to b alone, the rule disabled — and not saved
    data = form_data(change)
    data.update(pool=str(history["only_b"].pk), enabled="", simulate_days="1")
    before = written()
    leads_before = list(Lead.objects.order_by("pk").values("pk", "owner", "status", "rule"))
    with time_machine.travel(LATER, tick=False):
        page = client.post(simulate_url, data)
    text = page.content.decode()
    assert page.status_code == 200, text
    assert "as edited on its page, <strong>not saved</strong>" in text
    assert "<strong>2</strong> of 3 lead(s) would go differently" in text
    assert f"<td>{b.email}</td><td>3</td><td>1</td>" in text

    # nothing written: the rule is as stored, no row added anywhere, the leads untouched
    assert written() == before
    stored = Rule.objects.get(pk=rule.pk)
    assert (stored.pool.name, stored.enabled) == ("both", True)
    assert list(Lead.objects.order_by("pk").values("pk", "owner", "status", "rule")) == leads_before
    assert [lead.pk for lead in leads] == [r["pk"] for r in leads_before]


def test_the_simulate_button_reports_an_invalid_form_and_saves_nothing(history, client):
    rule = history["rule"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    change = client.get(f"/admin/distribution/rule/{rule.pk}/change/")
    data = form_data(change)
    data["filters"] = '[{"field": "city"}]'  # no op
    before = written()
    page = client.post(f"/admin/distribution/rule/{rule.pk}/simulate/", data)
    assert "The form has errors" in page.content.decode()
    assert written() == before
