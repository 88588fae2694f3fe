"""Issue 11, "tried as a new user would": the organisation's business hours and after-hours
policy (seed 003), pool caps (seed 002 "Max Leads … to a group"), the `owner` and
`action_count` lead filters (seed 002), saving the filters of an enabled rule, and the
performance metrics window per rule."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
import time_machine

from distribution.configuration import config_apply, config_export, load_text
from distribution.models import Assignment, DistributionAttempt, Pool, Rule
from distribution.services.automations import lead_run_automations
from distribution.services.queueing import leads_distribute_pending
from leads.models import Activity, Lead
from tests.factories import AgentFactory, UserFactory
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
SUNDAY_10 = dt.datetime(2025, 3, 2, 10, 0, tzinfo=UTC)

OFFICE = """
schedules:
  - name: office
    timezone: UTC
    intervals: [{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]
organisation:
  name: Acme Mortgages
  business_hours: office
"""


def _apply(text: str, capture=None) -> None:
    if capture is None:
        config_apply(load_text(text))
        return
    with capture(execute=True):
        config_apply(load_text(text))


def _last_attempt(lead: Lead) -> DistributionAttempt:
    return DistributionAttempt.objects.filter(lead=lead).order_by("-id").first()


# --- organisation defaults (seed 003) ---------------------------------------------------------


# "Distribution can be performed only during an organization's business hours."
def test_a_rule_without_a_schedule_holds_leads_outside_the_organisations_business_hours(
    agents, post, web
):
    (a,) = agents(1)
    _apply(OFFICE)
    make_rule(pool=make_pool([a]), sources=[web])  # no schedule, no after-hours policy
    with time_machine.travel(SUNDAY_10, tick=False):
        lead = post()
    assert (lead.status, lead.owner) == ("held", None)
    assert lead.held_until == dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # Monday's opening
    reason = _last_attempt(lead).reason
    assert "the organisation's business hours 'office'" in reason, reason
    with time_machine.travel(MONDAY_10, tick=False):
        assert post().owner == a  # inside the hours it is distributed at once


# "if a lead is received outside of an organization's set business hours and the
# distribution type is set to Distribute Ring All, the lead will go into … Unassigned"
def test_a_ring_all_lead_after_the_organisations_hours_goes_to_unassigned_by_default(
    agents, post, web
):
    a, b = agents(2)
    _apply(OFFICE)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    with time_machine.travel(SUNDAY_10, tick=False):
        lead = post()
    assert (lead.status, lead.owner) == ("unassigned", None)
    assert not lead.offers.exists()
    reason = _last_attempt(lead).reason
    assert "organisation's business hours" in reason and "after-hours policy" in reason


def test_a_ring_all_rule_with_its_own_closed_schedule_sends_to_unassigned_unless_told(
    agents, post, web
):
    """Without any organisation row or config: the rule's own schedule, no policy set."""
    a, b = agents(2)
    hours = make_schedule("weekdays")
    pool = make_pool([a, b])
    ring = make_rule("ring", pool=pool, sources=[web], strategy="broadcast", schedule=hours)
    with time_machine.travel(SUNDAY_10, tick=False):
        lead = post()
    assert lead.status == "unassigned"
    assert "the rule's schedule 'weekdays'" in _last_attempt(lead).reason
    ring.after_hours = "hold"  # a policy of its own wins
    ring.save()
    with time_machine.travel(SUNDAY_10, tick=False):
        assert post().status == "held"


def test_a_rule_keeps_its_own_schedule_and_policy_over_the_organisations(agents, post, web):
    (a,) = agents(1)
    _apply(OFFICE)
    always = make_schedule("always", days=range(7), start="00:00", end="00:00")
    make_rule(pool=make_pool([a]), sources=[web], schedule=always)
    with time_machine.travel(SUNDAY_10, tick=False):
        assert post().owner == a  # the rule's 24/7 schedule, not the office hours
    from distribution.models import Organisation

    org = Organisation.objects.get()
    org.after_hours = "unassigned"
    org.save()
    Rule.objects.update(schedule=None)
    with time_machine.travel(SUNDAY_10, tick=False):
        lead = post()
    assert lead.status == "unassigned"  # the organisation's policy, inherited
    assert "the organisation's after-hours policy" in _last_attempt(lead).reason


def test_the_organisation_round_trips_through_export_and_apply():
    _apply(OFFICE + "  after_hours: offer_now\n")
    exported = yaml_of(config_export(only=["organisation"]))
    assert exported == {
        "organisation": {
            "name": "Acme Mortgages",
            "business_hours": "office",
            "after_hours": "offer_now",
            "ring_all_after_hours": "unassigned",
        }
    }
    report = config_apply(exported)
    assert report.counts["organisation"].unchanged == 1


def test_the_organisation_is_edited_in_the_admin(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    hours = make_schedule("office")
    response = client.get("/admin/distribution/organisation/")
    assert response.status_code == 302  # the one row: the list is its change page
    url = response["Location"]
    page = client.get(url).content.decode()
    assert 'name="business_hours"' in page and 'name="ring_all_after_hours"' in page
    response = client.post(
        url,
        {
            "name": "Acme",
            "business_hours": hours.pk,
            "after_hours": "hold",
            "ring_all_after_hours": "unassigned",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    from distribution.models import Organisation

    assert Organisation.objects.get().business_hours == hours


def yaml_of(text: str) -> dict:
    return load_text(text)


# --- pool caps (seed 002: "Max Leads … to a group or user within a defined timeframe") --------


POOL_CAPPED = """
agents: [{email: ava@example.com}, {email: ben@example.com}]
sources: [{slug: web, name: Web}]
pools:
  - name: team
    caps: {day: 3}
    members: [{agent: ava@example.com}, {agent: ben@example.com}]
rules:
  - {name: team rule, enabled: true, sources: [web], pool: team}
"""


def test_a_pool_cap_stops_the_whole_pool_in_one_batch_with_its_own_reason():
    _apply(POOL_CAPPED)
    web = Lead._meta.get_field("source").related_model.objects.get(slug="web")
    Lead.objects.bulk_create(Lead(source=web, email=f"b{i}@example.com") for i in range(5))
    with time_machine.travel(MONDAY_10, tick=False):
        outcomes = leads_distribute_pending()  # one batch
    assert outcomes == {"assigned": 3, "no_eligible_member": 2}
    assert Assignment.objects.filter(pool__name="team").count() == 3
    refused = Lead.objects.filter(status="exception").first()
    reasons = {c["reason"] for c in _last_attempt(refused).candidates}
    assert reasons == {"pool_cap_reached"}
    assert refused.exception_reason.startswith("Rule 'team rule'")
    assert "2 pool_cap_reached" in refused.exception_reason, refused.exception_reason


def test_a_pool_cap_holds_across_batches_and_resets_the_next_day(post):
    _apply(POOL_CAPPED)
    with time_machine.travel(MONDAY_10, tick=False):
        owners = [post().owner for _ in range(4)]
    assert owners[3] is None and all(owners[:3])
    with time_machine.travel(MONDAY_10 + dt.timedelta(days=1), tick=False):
        assert post().owner is not None  # a new day: the pool's quota is back


def test_a_claim_past_the_pool_cap_is_refused(post):
    from distribution.errors import NotAllowed
    from distribution.services.claims import offer_claim

    _apply(POOL_CAPPED.replace("pool: team}", "pool: team, claim_timeout: 15m}"))
    with time_machine.travel(MONDAY_10, tick=False):
        leads = [post() for _ in range(4)]  # offers do not count; claims do
        assert [lead.status for lead in leads] == ["offered"] * 4
        claimed = 0
        for lead in leads:
            offer = lead.offers.get(status="open")
            try:
                offer_claim(offer_id=offer.pk, agent=offer.agent)
                claimed += 1
            except NotAllowed as exc:
                assert exc.code == "pool_cap_reached"
    assert claimed == 3 and Assignment.objects.count() == 3


def test_pool_caps_are_set_in_the_admin_and_exported(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/distribution/pool/add/").content.decode()
    assert 'name="cap_day"' in page and 'name="cap_month"' in page
    response = client.post(
        "/admin/distribution/pool/add/",
        {
            "name": "capped",
            "description": "",
            "cap_day": "4",
            "cap_week": "10",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    pool = Pool.objects.get(name="capped")
    assert (pool.cap_day, pool.cap_week, pool.cap_hour) == (4, 10, None)
    exported = yaml_of(config_export(only=["pools"]))["pools"]
    assert exported == [{"name": "capped", "caps": {"day": 4, "week": 10}, "members": []}]


# --- owner and action_count filters (seed 002) ------------------------------------------------


# "[User] equal to (Unassigned)", "[Action Count] equal to 0": enabling the rule takes the
# waiting leads nobody worked on, not the one with an activity.
def test_owner_unassigned_and_action_count_zero_filters_choose_the_untouched_leads(
    agents, post, web, django_capture_on_commit_callbacks
):
    (a,) = agents(1)
    fresh, worked = post(), post()
    assert fresh.status == worked.status == "unassigned"  # no rule yet
    Activity.objects.create(lead=worked, kind="call_attempt", note="called once")
    cfg = f"""
pools: [{{name: p, members: [{{agent: {a.email}}}]}}]
rules:
  - name: untouched
    enabled: true
    pool: p
    filters:
      - {{field: owner, op: is_empty}}
      - {{field: action_count, op: eq, value: 0}}
"""
    _apply(cfg, django_capture_on_commit_callbacks)
    fresh.refresh_from_db()
    worked.refresh_from_db()
    assert fresh.owner == a
    assert (worked.owner, worked.status) == (None, "unassigned")


def test_an_owner_filter_names_the_agent_by_e_mail(agents, post, web):
    a, b = agents(2)
    make_rule(pool=make_pool([a]), sources=[web])
    from distribution.models import Automation

    Automation.objects.create(
        name="from ava to ben",
        trigger="updated",
        action="user",
        target_user=b,
        filters=[{"field": "owner", "op": "eq", "value": a.email.upper()}],
    )
    lead = post()
    assert lead.owner == a
    lead_run_automations(lead_id=lead.pk, trigger="updated")
    lead.refresh_from_db()
    assert lead.owner == b


def test_action_count_counts_activities_and_compares_as_a_number(agents, post, web):
    (a,) = agents(1)
    pool = make_pool([a])
    make_rule(
        "busy", pool=pool, priority=1, filters=[{"field": "action_count", "op": "gte", "value": 2}]
    )
    make_rule("other", pool=pool, priority=2, strategy="manual")
    lead = post()
    assert lead.status == "unassigned"  # "other" (manual): a new lead has no activity
    Activity.objects.bulk_create(Activity(lead=lead, kind="note") for _ in range(2))
    Lead.objects.filter(pk=lead.pk).update(distribution_state="pending", status="pending")
    leads_distribute_pending()
    lead.refresh_from_db()
    assert lead.owner == a and lead.rule.name == "busy"


# --- saving the filters of an enabled rule (seed 002) -----------------------------------------


# "Enabled programs will distribute leads once filters are saved."
def test_saving_the_filters_of_an_enabled_rule_in_the_admin_distributes_what_it_now_matches(
    agents, post, web, client, django_capture_on_commit_callbacks
):
    (a,) = agents(1)
    rule = make_rule(
        pool=make_pool([a]),
        sources=[web],
        filters=[{"field": "city", "op": "eq", "value": "Delft"}],
    )
    waiting = post(city="Utrecht")
    assert waiting.status == "unassigned"
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/distribution/rule/{rule.pk}/change/"
    data = _form_data(client.get(url))
    data["filters"] = json.dumps([{"field": "city", "op": "in", "value": ["Delft", "Utrecht"]}])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data, follow=True)
    assert response.status_code == 200
    assert "now matches are being distributed" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.owner == a


def test_saving_the_filters_of_an_enabled_rule_by_config_distributes_what_it_now_matches(
    agents, post, web, django_capture_on_commit_callbacks
):
    (a,) = agents(1)
    cfg = f"""
pools: [{{name: p, members: [{{agent: {a.email}}}]}}]
rules:
  - name: r
    enabled: true
    sources: [web]
    pool: p
    filters: [{{field: city, op: eq, value: %s}}]
"""
    _apply(cfg % "Delft", django_capture_on_commit_callbacks)
    waiting = post(city="Utrecht")
    assert waiting.owner is None
    _apply(cfg % "Utrecht", django_capture_on_commit_callbacks)
    waiting.refresh_from_db()
    assert waiting.owner == a


def _form_data(response) -> dict:
    """The rule change form's current values as a browser posts them (filters as JSON)."""
    data: dict = {}
    form = response.context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        if name == "filters":
            data[name] = value if isinstance(value, str) else json.dumps(value)
        elif value is True:
            data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        else:
            data[name] = str(value)
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = str(management[name].value())
    return data


# --- the performance metrics window per rule --------------------------------------------------


def test_the_performance_metrics_window_is_the_rules(agents, post, web):
    """Ava converted two leads 20 days ago and none this week; Ben the other way round. Over
    the old fixed 30 days Ava leads (2/3 against 1/3); over the rule's 7 days Ben (1/1
    against 0/1)."""
    ava, ben = agents(2)
    pool = make_pool([ava, ben])
    old = MONDAY_10 - dt.timedelta(days=20)
    recent = MONDAY_10 - dt.timedelta(days=2)
    history = [(ava, old, True), (ava, old, True), (ava, recent, False)]
    history += [(ben, old, False), (ben, old, False), (ben, recent, True)]
    for i, (agent, when, converted) in enumerate(history):
        lead = Lead.objects.create(
            source=web,
            email=f"h{i}@example.com",
            owner=agent,
            status="working",
            distribution_state="done",
        )
        Assignment.objects.create(lead=lead, agent=agent, pool=pool, method="auto")
        Assignment.objects.filter(lead=lead).update(created_at=when)
        if converted:
            act = Activity.objects.create(lead=lead, agent=agent, kind="converted")
            Activity.objects.filter(pk=act.pk).update(created_at=when + dt.timedelta(hours=1))
    rule = make_rule(pool=pool, sources=[web], strategy="performance")
    with time_machine.travel(MONDAY_10, tick=False):
        assert post().owner == ava  # the default 30 days
    rule.metrics_window = dt.timedelta(days=7)
    rule.save()
    with time_machine.travel(MONDAY_10, tick=False):
        assert post().owner == ben  # the rule's 7 days


def test_the_metrics_window_is_a_config_key_and_exported():
    config_apply({"rules": [{"name": "perf", "strategy": "manual", "metrics_window": "7d"}]})
    assert Rule.objects.get(name="perf").metrics_window == dt.timedelta(days=7)
    (row,) = yaml_of(config_export(only=["rules"]))["rules"]
    assert row["metrics_window"] == "7d"


def test_pool_members_reach_no_more_than_the_pool_cap_whoever_they_are():
    """A member removed from the pool still counts toward the pool's cap."""
    ava, ben = AgentFactory(), AgentFactory()
    pool = make_pool([ava, ben])
    pool.cap_day = 2
    pool.save()
    gone = AgentFactory()
    for _ in range(2):
        lead = Lead.objects.create(
            email="old@example.com", owner=gone, status="working", distribution_state="done"
        )
        with time_machine.travel(MONDAY_10 - dt.timedelta(hours=1), tick=False):
            Assignment.objects.create(lead=lead, agent=gone, pool=pool, method="auto")
    make_rule(pool=pool)
    Lead.objects.create(email="new@example.com")
    with time_machine.travel(MONDAY_10, tick=False):
        assert leads_distribute_pending() == {"no_eligible_member": 1}
    assert Counter(Assignment.objects.values_list("agent", flat=True)) == {gone.pk: 2}
