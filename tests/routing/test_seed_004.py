"""Seed 004 — the automation "Distribute Lead" action: to a user, through the assignment
rules, through one distribution rule, or to the hopper with an optional owner."""

from __future__ import annotations

import pytest

from distribution.models import Automation
from distribution.services.agent_work import lead_status_update
from leads.models import Lead
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db


def automation(name: str, action: str, **fields):
    fields.setdefault("trigger", "created")
    return Automation.objects.create(name=name, action=action, **fields)


# "a specific User: Sends a lead directly to the selected User"
def test_an_automation_sends_matching_leads_to_a_user(agents, post, web):
    a, vip_manager = agents(2)
    make_rule(pool=make_pool([a]), sources=[web])
    automation(
        "globex",
        "user",
        target_user=vip_manager,
        filters=[{"field": "company_name", "op": "eq", "value": "Globex"}],
    )
    assert post(company_name="Globex").owner == vip_manager
    assert post(company_name="Initech").owner == a


# "If a Lead Owner already exists then this option will also reassign the Lead Owner."
def test_a_user_automation_on_status_change_reassigns_the_owner(
    agents, post, web, django_capture_on_commit_callbacks
):
    a, closer = agents(2)
    make_rule(pool=make_pool([a]), sources=[web])
    automation(
        "qualified to the closer",
        "user",
        trigger="status_changed",
        target_user=closer,
        filters=[{"field": "status", "op": "eq", "value": "qualified"}],
    )
    lead = post()
    assert lead.owner == a
    with django_capture_on_commit_callbacks(execute=True):
        lead_status_update(lead_id=lead.pk, agent=a, status="qualified")
    lead.refresh_from_db()
    assert lead.owner == closer


# "Assignment Rules: ... helpful when you need to distribute leads based on company size,
# location or name" + "Combining Assignment and Distribution Rules": one Rule holds both the
# criteria and the strategy.
def test_assignment_rules_route_by_company_size_location_and_name(agents, post, web):
    majors, benelux, rest = agents(3)
    make_rule(
        "major accounts",
        pool=make_pool([majors], name="majors"),
        priority=1,
        filters=[{"field": "company_size", "op": "gte", "value": 1000}],
    )
    make_rule(
        "benelux",
        pool=make_pool([benelux], name="benelux"),
        priority=2,
        filters=[{"field": "country", "op": "in", "value": ["NL", "BE"]}],
    )
    make_rule("rest", pool=make_pool([rest], name="rest"), priority=3)
    automation("through the assignment rules", "assignment_rules")
    assert post(company_size=5000, country="NL").owner == majors
    assert post(company_size=20, country="BE").owner == benelux
    assert post(company_size=20, country="US").owner == rest


# "Distribution Rules: Sends leads through a specific Distribution Rule ... round robin,
# based on performance or take a User's ... load into consideration."
def test_an_automation_sends_a_lead_through_one_named_rule(agents, post, web):
    a, b, c = agents(3)
    make_rule("default", pool=make_pool([a], name="p1"), priority=1)
    balanced = make_rule(
        "load",
        pool=make_pool([b, c], name="p2"),
        priority=50,
        strategy="load_balanced",
        enabled=True,
    )
    Lead.objects.create(first_name="open", owner=b, status="working")
    automation(
        "partners by load",
        "rule",
        target_rule=balanced,
        filters=[{"field": "source", "op": "eq", "value": "web"}],
    )
    assert post().owner == c  # b has an open lead, c has none


# "Hopper and Assign To: Sends leads to the Hopper ... It's optional to assign a Lead Owner.
# ... The Hopper can be used as a "shark tank" for hungry sales people"
def test_an_automation_puts_leads_in_the_hopper_with_an_optional_owner(agents, post, web):
    a, b, owner = agents(3)
    tank = make_rule(
        "tank",
        pool=make_pool([a, b]),
        strategy="hopper",
        priority=99,
        filters=[{"field": "city", "op": "eq", "value": "nowhere"}],
    )
    automation(
        "to the tank",
        "hopper",
        target_rule=tank,
        filters=[{"field": "city", "op": "eq", "value": "Utrecht"}],
    )
    automation(
        "to the tank with an owner",
        "hopper",
        target_rule=tank,
        target_user=owner,
        filters=[{"field": "city", "op": "eq", "value": "Delft"}],
        priority=200,
    )
    unowned = post(city="Utrecht")
    owned = post(city="Delft")
    assert (unowned.status, unowned.owner) == ("waiting", None)
    assert (owned.status, owned.owner) == ("waiting", owner)
    from distribution.selectors.routing import hopper_leads_for_agent

    assert [lead.pk for lead in hopper_leads_for_agent(agent=a)] == [unowned.pk, owned.pk]


def _change_form_data(response) -> dict:
    """The admin change form's current values (and its inlines'), as the browser posts them."""
    data: dict = {}

    def add(form) -> None:
        for name in form.fields:
            value = form[name].value()
            key = form.add_prefix(name)
            if value is None or value is False:
                continue
            if value is True:
                data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            else:
                data[key] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


# "fires on a lead event (created, updated, status changed)": a manager's edit is an update.
def test_an_update_automation_runs_when_a_manager_edits_a_lead(
    agents, post, web, admin_client, django_capture_on_commit_callbacks
):
    a, utrecht = agents(2)
    make_rule(pool=make_pool([a]), sources=[web])
    automation(
        "moved to Utrecht",
        "user",
        trigger="updated",
        target_user=utrecht,
        filters=[{"field": "city", "op": "eq", "value": "Utrecht"}],
    )
    lead = post(city="Amsterdam")
    assert lead.owner == a
    url = f"/admin/leads/lead/{lead.pk}/change/"
    data = _change_form_data(admin_client.get(url))
    data["city"] = "Utrecht"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    lead.refresh_from_db()
    assert (lead.city, lead.owner) == ("Utrecht", utrecht)
    from distribution.models import DistributionAttempt

    assert DistributionAttempt.objects.filter(lead=lead, trigger="automation").exists()
