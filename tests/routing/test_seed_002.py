"""Seed 002 — a distribution-program editor: push vs pull (blind, preview), schedules with
shifts, lead filters, performance filters, user filters with max leads per timeframe,
Simulate Distribution, and the Enabled flag."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command

from distribution.errors import AlreadyClaimed
from distribution.models import Assignment, DistributionAttempt, Offer, PerformanceTier, Rule
from distribution.services.claims import hopper_claim, lead_pull
from distribution.services.rules import rules_enable
from distribution.services.simulate import rule_simulate
from leads.models import Activity, Lead, LeadEvent
from tests.factories import CampaignFactory, LeadFactory
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


# "Push: Distributes Leads in real time as they are imported"
def test_push_distributes_a_lead_as_it_arrives(agents, post, web):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web])
    assert post().owner == a


# "Pull: Distributes leads based on users making requests for new leads." + "Pull Blind:
# Users may "pull" leads based on the allotted number of leads set by the administrator"
def test_pull_gives_the_oldest_waiting_lead_up_to_the_allotment(agents, post, web):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="pull", pull_allotment=2)
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        leads = []
        for _ in range(4):
            leads.append(post())
            clock.shift(dt.timedelta(minutes=1))
        assert {lead.status for lead in leads} == {"waiting"}

        assert lead_pull(agent=a) == leads[0]
        assert lead_pull(agent=a) == leads[1]
        assert lead_pull(agent=a) is None  # allotment of 2 per day used
        assert lead_pull(agent=b) == leads[2]
        clock.shift(dt.timedelta(days=1))
        assert lead_pull(agent=a) == leads[3]  # a new day, a new allotment
    assert Lead.objects.get(pk=leads[0].pk).owner == a


def test_only_members_of_a_pull_rule_can_pull(agents, post, web):
    a, outsider = agents(2)
    make_rule(pool=make_pool([a]), sources=[web], strategy="pull")
    post()
    assert lead_pull(agent=outsider) is None


# "Pull Preview: Users may pick and choose (cherry-pick) leads from a shared queue."
def test_hopper_agents_cherry_pick_and_the_first_pick_wins(agents, post, web):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="hopper")
    first, second = post(), post()
    assert hopper_claim(agent=b, lead_id=second.pk).owner == b
    with pytest.raises(AlreadyClaimed):
        hopper_claim(agent=a, lead_id=second.pk)
    assert Lead.objects.get(pk=first.pk).status == "waiting"


# "It is possible to schedule a distribution program to run multiple time ranges (shifts) in
# a day ... from 8:00 AM to 12:00PM, then again from 2:00PM to 5:00PM"
@pytest.mark.parametrize(
    ("hour", "status"), [(9, "assigned"), (13, "held"), (15, "assigned"), (18, "held")]
)
def test_a_program_runs_only_in_its_shifts(agents, post, web, hour, status):
    (a,) = agents(1)
    shifts = make_schedule(days=range(5), start="08:00", end="12:00")
    for day in range(5):
        shifts.intervals.create(weekday=day, start=dt.time(14), end=dt.time(17))
    make_rule(pool=make_pool([a]), sources=[web], schedule=shifts)
    with time_machine.travel(MONDAY_10.replace(hour=hour), tick=False):
        assert post().status == status


# "These filters enable the distribution program to find leads that are in the New status,
# unassigned, have an action count equaling zero, in the Zillow campaign. Leads that do not
# match this criteria will not distributed by this program."
def test_lead_filters_decide_which_leads_a_program_takes(agents, post, web):
    a, b = agents(2)
    zillow = CampaignFactory(slug="zillow")
    make_rule(
        "zillow big",
        pool=make_pool([a], name="p1"),
        campaign=zillow,
        filters=[{"field": "company_size", "op": "gte", "value": 50}],
        priority=1,
    )
    make_rule("rest", pool=make_pool([b], name="p2"), priority=2)
    assert post(campaign="zillow", company_size=80).owner == a
    assert post(campaign="zillow", company_size=10).owner == b
    assert post(company_size=80).owner == b
    attempt = DistributionAttempt.objects.latest("id")
    assert attempt.rules_tried[0]["reason"] == "campaign_mismatch"  # why it did not match


# "Use the Performance Filters tab to dynamically increase or decrease lead maximums based
# on ... Conversion Rate"
def test_a_performance_tier_raises_a_good_converters_cap(agents, post, web):
    star, steady = agents(2)
    rule = make_rule(pool=make_pool([star, steady]), sources=[web], cap_day=2)
    PerformanceTier.objects.create(
        rule=rule, metric="conversion_rate", op="gte", threshold=0.5, multiplier=2
    )
    with time_machine.travel(MONDAY_10 - dt.timedelta(days=3), tick=False):
        for _ in range(4):  # a record of conversions in the trailing window
            old = LeadFactory(owner=star, assigned=True)
            Assignment.objects.create(lead=old, agent=star, method="auto")
            Activity.objects.create(lead=old, agent=star, kind="converted")
    with time_machine.travel(MONDAY_10, tick=False):
        owners = [post().owner for _ in range(6)]
    assert owners.count(star) == 4 and owners.count(steady) == 2
    assert Lead.objects.filter(status="exception").count() == 0


# "Max Leads Maximum number of leads distributed to a group or user within a defined
# timeframe"
def test_max_leads_per_timeframe_caps_a_user_and_resets_with_the_window(agents, post, web):
    a, b = agents(2)
    pool = make_pool([a, b])
    pool.members.filter(agent=a).update(cap_hour=1)
    make_rule(pool=pool, sources=[web])
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        assert [post().owner for _ in range(3)] == [a, b, b]
        attempt = DistributionAttempt.objects.latest("id")
        assert {"agent": a.email, "reason": "cap_reached"}.items() <= next(
            c for c in attempt.candidates if c["agent"] == a.email
        ).items()
        clock.shift(dt.timedelta(hours=1))
        assert post().owner == a


def test_a_lead_given_and_lost_still_counts_toward_the_cap(agents, post, web):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], cap_day=1)
    with time_machine.travel(MONDAY_10, tick=False):
        first = post()
        assert first.owner == a
        Lead.objects.filter(pk=first.pk).update(owner=None, status="lost")
        assert post().owner == b
        assert post().status == "exception"  # both have had their one lead today


# "Filters Criteria that help you drill down to define the specific subset of leads you
# want to be distributed" (user filters)
def test_user_filters_give_a_member_only_the_leads_matching_them(agents, post, web):
    utrecht, anywhere = agents(2)
    pool = make_pool([utrecht, anywhere])
    pool.members.filter(agent=utrecht).update(
        filters=[{"field": "city", "op": "eq", "value": "Utrecht"}]
    )
    make_rule(pool=pool, sources=[web])
    assert [post(city="Amsterdam").owner for _ in range(2)] == [anywhere, anywhere]
    assert post(city="utrecht").owner == utrecht


# "This pop-up shows you how leads will be distributed by this program and to which users."
def test_simulate_shows_who_would_get_what_and_writes_nothing(agents, post, web):
    a, b = agents(2)
    rule = make_rule(pool=make_pool([a, b]), sources=[web], enabled=False, cap_day=1)
    with time_machine.travel(MONDAY_10, tick=False):
        leads = [post() for _ in range(3)]
    counts = {m: m.objects.count() for m in (Assignment, Offer, LeadEvent, DistributionAttempt)}
    with time_machine.travel(MONDAY_10 + dt.timedelta(hours=1), tick=False):
        result = rule_simulate(rule_name=rule.name, days=1)
    assert [d["owner"] for d in result["decisions"]] == [a.email, b.email, None]
    assert [d["lead"] for d in result["decisions"]] == [lead.pk for lead in leads]
    assert result["decisions"][2]["status"] == "exception"
    assert result["totals"] == {
        a.email: {"would_receive": 1, "cap": 1, "received": 0},  # did receive: none
        b.email: {"would_receive": 1, "cap": 1, "received": 0},
    }
    assert {m: m.objects.count() for m in counts} == counts
    assert set(Lead.objects.values_list("status", flat=True)) == {"unassigned"}
    assert not Rule.objects.get(pk=rule.pk).enabled


def test_simulate_replays_a_changed_rule(agents, post, web):
    a, b = agents(2)
    rule = make_rule(pool=make_pool([a, b]), sources=[web], enabled=False)
    with time_machine.travel(MONDAY_10, tick=False):
        post()
    with time_machine.travel(MONDAY_10 + dt.timedelta(hours=1), tick=False):
        result = rule_simulate(
            rule_name=rule.name, days=1, changes={"strategy": "broadcast", "claim_timeout": "5m"}
        )
    assert result["decisions"][0]["status"] == "offered"


def test_simulate_command_prints_the_design_json_shape(agents, post, web, capsys):
    import json

    a, _ = agents(2)
    rule = make_rule(pool=make_pool([a]), sources=[web], enabled=False)
    lead = post()
    call_command("simulate", "--rule", rule.name, "--days", "1", "--json")
    doc = json.loads(capsys.readouterr().out)
    design = ("lead", "rule", "owner", "status", "candidates")  # DESIGN §7, exactly
    assert {
        "decisions": [{k: d[k] for k in design} for d in doc["decisions"]],
        "totals": {
            e: {k: t[k] for k in ("would_receive", "cap")} for e, t in doc["totals"].items()
        },
    } == {
        "decisions": [
            {
                "lead": lead.pk,
                "rule": rule.name,
                "owner": a.email,
                "status": "assigned",
                "candidates": [{"agent": a.email, "rank": 1, "reason": None}],
            }
        ],
        "totals": {a.email: {"would_receive": 1, "cap": None}},
    }
    # added keys (issue 11): what happened (the disabled rule left it unassigned)
    assert doc["decisions"][0]["actual"] == {"owner": None, "status": "unassigned", "rule": None}
    assert doc["decisions"][0]["differs"] is True
    assert doc["totals"][a.email]["received"] == 0 and doc["differing"] == 1


# "Distribution programs will not run until they are enabled." + "As soon as a distribution
# program is enabled, all qualifying leads will be distributed."
def test_a_disabled_rule_distributes_nothing_and_enabling_it_distributes_waiting_leads(
    agents, post, web
):
    a, b = agents(2)
    rule = make_rule(
        pool=make_pool([a, b]),
        sources=[web],
        enabled=False,
        filters=[{"field": "city", "op": "eq", "value": "Delft"}],
    )
    waiting = [post(city="Delft"), post(city="Delft")]
    other = post(city="Leiden")
    assert {lead.status for lead in waiting} == {"unassigned"}

    outcomes = rules_enable(rule_ids=[rule.pk])

    assert outcomes == {"enabled": 1, "assigned": 2}
    assert [Lead.objects.get(pk=lead.pk).owner for lead in waiting] == [a, b]
    assert Lead.objects.get(pk=other.pk).status == "unassigned"
    assert DistributionAttempt.objects.filter(trigger="enable").count() == 2


def test_enabling_a_rule_in_the_admin_distributes_its_waiting_leads(
    agents, post, web, client, django_capture_on_commit_callbacks
):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], enabled=False)
    lead = post()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/distribution/rule/",
            {"action": "enable_rules", "_selected_action": [rule.pk]},
            follow=True,
        )
    assert "Enabled 1 rule; distributed 1 waiting lead" in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).owner == a


def test_a_rule_added_in_the_admin_starts_disabled(client):
    """As a manager would: open "Add rule", look at the Enabled box, fill in a name and a
    pool and save without touching the box — the rule is stored disabled (seed 002: enable it after
    simulating). The box is read as the browser reads it (the <input> element's own
    attributes, in whatever order Django writes them)."""
    from html.parser import HTMLParser

    from tests.factories import UserFactory

    class Inputs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: dict[str, dict[str, str | None]] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            named = dict(attrs)
            if tag in ("input", "select", "textarea") and named.get("name"):
                self.found.setdefault(str(named["name"]), {**named, "tag": tag})

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get("/admin/distribution/rule/add/")
    parser = Inputs()
    parser.feed(response.content.decode())
    box = parser.found["enabled"]
    assert box["type"] == "checkbox"
    assert "checked" not in box  # rendered unticked

    # what the browser posts: every field as rendered, the box unticked so not sent
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool) or value is None:
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        else:
            data[name] = value if name == "filters" else form[name].field.widget.format_value(value)
    assert "enabled" not in data
    pool = make_pool([])
    data.update(
        {
            "name": "fresh",
            "pool": str(pool.pk),
            "tiers-TOTAL_FORMS": "0",
            "tiers-INITIAL_FORMS": "0",
        }
    )
    saved = client.post("/admin/distribution/rule/add/", data)
    assert saved.status_code == 302, (
        saved.context["adminform"].form.errors,
        [f.formset.errors for f in saved.context["inline_admin_formsets"]],
    )
    assert Rule.objects.get(name="fresh").enabled is False
