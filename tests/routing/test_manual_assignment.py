"""One way to assign by hand (issue 11 item 3): the lead form's owner, the bulk action and the
Lead Assignment queue go through the one service, so each shows every effect — assignment
row, the agent's round-robin turn, open offers withdrawn and their agents told, the hold
cleared, the rule's initial status and activity, the e-mail, and the history naming who.

Seed 003: "The last lead assigned time is affected by manual assignment and distribution."
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from distribution.models import Assignment, DistributionAttempt, Notice, Offer
from leads.models import Activity, Lead
from tests.factories import LeadFactory, SourceFactory, UserFactory
from tests.routing.admin_forms import change_form_data
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.django_db
SATURDAY_10 = dt.datetime(2025, 3, 8, 10, 0, tzinfo=dt.UTC)  # weekday schedules are closed


@pytest.fixture
def world(agents: Any, post: Any, web: Any, client: Any) -> Any:
    """An offered lead (open offer to a) and a held lead (after hours), a manager signed in."""
    a, b, c = agents(3)
    for agent, hours_ago in ((a, 3), (b, 2), (c, 1)):
        agent.agent.last_turn_at = SATURDAY_10 - dt.timedelta(hours=hours_ago)
        agent.agent.save()
    make_rule(
        "offers",
        pool=make_pool([a, b, c], name="team"),
        sources=[web],
        claim_timeout=dt.timedelta(minutes=15),
        initial_status="working",
        initial_activity="call_attempt",
    )
    csv = SourceFactory(slug="csv")
    make_rule(
        "weekdays",
        pool=make_pool([a, b], name="office team"),
        sources=[csv],
        schedule=make_schedule(),
        after_hours="hold",
        initial_status="contacted",
        initial_activity="meeting",
    )
    manager = UserFactory(email="manager@example.com", is_staff=True, is_superuser=True)
    client.force_login(manager)
    with time_machine.travel(SATURDAY_10, tick=False):
        offered = post()
        held = post(source=csv)
    assert (offered.status, Offer.objects.get(lead=offered).agent) == ("offered", a)
    assert held.status == "held" and held.held_until is not None
    mail.outbox.clear()
    return SimpleNamespace(a=a, b=b, c=c, offered=offered, held=held, manager=manager)


def by_lead_form(client: Any, leads: list[Lead], agent: Any) -> str:
    for lead in leads:
        url = reverse("admin:leads_lead_change", args=[lead.pk])
        data = change_form_data(client.get(url))
        data["owner"] = str(agent.pk)
        response = client.post(url, data)
        assert response.status_code == 302, response.context["adminform"].form.errors
    return "the lead's admin form"


def by_bulk_action(client: Any, leads: list[Lead], agent: Any) -> str:
    changelist = reverse("admin:leads_lead_changelist")
    ids = [lead.pk for lead in leads]
    chooser = client.post(changelist, {"action": "assign_to_agent", "_selected_action": ids})
    assert chooser.status_code == 200 and b"Assign 2 leads to an agent" in chooser.content
    response = client.post(
        changelist,
        {"action": "assign_to_agent", "_selected_action": ids, "apply": "1", "agent": agent.pk},
    )
    assert response.status_code == 302
    return "a bulk action on the lead list"


def by_queue(client: Any, leads: list[Lead], agent: Any) -> str:
    response = client.post(
        reverse("admin:distribution_assignment_queue"),
        {"lead": [lead.pk for lead in leads], "agent": agent.pk, "assign": "1"},
    )
    assert response.status_code == 302
    return "the Lead Assignment queue"


@pytest.mark.parametrize("assign", [by_lead_form, by_bulk_action, by_queue])
def test_assigning_by_hand_has_every_effect_whichever_screen_does_it(
    world: Any,
    client: Any,
    assign: Callable[..., str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    a, b = world.a, world.b
    with (
        time_machine.travel(SATURDAY_10 + dt.timedelta(minutes=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        via = assign(client, [world.offered, world.held], b)
    offered = Lead.objects.get(pk=world.offered.pk)
    held = Lead.objects.get(pk=world.held.pk)

    # the owner, and an assignment row naming the manager
    assert offered.owner == b and held.owner == b
    rows = Assignment.objects.filter(agent=b, method="manual", actor=world.manager)
    assert sorted(rows.values_list("lead_id", flat=True)) == sorted([offered.pk, held.pk])
    # b's round-robin turn moved to now: behind a and c
    b.agent.refresh_from_db()
    assert b.agent.last_turn_at == SATURDAY_10 + dt.timedelta(minutes=5)
    # a's open offer is withdrawn, and a is told (inbox and e-mail)
    assert Offer.objects.get(lead=offered).status == "withdrawn"
    assert "withdrawn" in Notice.objects.get(agent=a, lead=offered).message
    # the hold is cleared
    assert held.held_until is None
    # each lead enters the pipeline in its rule's initial status, with its initial activity
    assert (offered.status, held.status) == ("working", "contacted")
    assert list(Activity.objects.filter(lead=offered).values_list("kind", "agent")) == [
        ("call_attempt", b.pk)
    ]
    assert list(Activity.objects.filter(lead=held).values_list("kind", "agent")) == [
        ("meeting", b.pk)
    ]
    # b is e-mailed each lead; a is told the offer is gone
    to_b = sorted(m.subject for m in mail.outbox if m.to == [b.email])
    assert [s.split("#")[1].split()[0] for s in to_b] == sorted([str(offered.pk), str(held.pk)])
    assert any(m.to == [a.email] and f"#{offered.pk}" in m.subject for m in mail.outbox)
    # the distribution history says who did it, and where
    for lead in (offered, held):
        attempt = DistributionAttempt.objects.filter(lead=lead).order_by("-created_at").first()
        assert (attempt.trigger, attempt.outcome, attempt.actor) == (
            "manual",
            "manual",
            world.manager,
        )
        assert "manager@example.com" in attempt.reason and via in attempt.reason


def test_the_lead_form_never_writes_the_owner_itself(world: Any, client: Any) -> None:
    """Changing the owner together with another field: the other field is saved as typed,
    the owner through the service (one assignment row, not a bare column write)."""
    url = reverse("admin:leads_lead_change", args=[world.held.pk])
    data = change_form_data(client.get(url))
    data.update(owner=str(world.c.pk), city="Utrecht")
    assert client.post(url, data).status_code == 302
    lead = Lead.objects.get(pk=world.held.pk)
    assert (lead.owner, lead.city, lead.status) == (world.c, "Utrecht", "contacted")
    assert Assignment.objects.filter(lead=lead, agent=world.c).count() == 1


def test_the_lead_form_refuses_an_owner_who_is_not_an_agent(world: Any, client: Any) -> None:
    url = reverse("admin:leads_lead_change", args=[world.held.pk])
    data = change_form_data(client.get(url))
    data["owner"] = str(world.manager.pk)
    response = client.post(url, data)
    assert response.status_code == 200
    assert "not an active agent" in str(response.context["adminform"].form.errors["owner"])
    assert Lead.objects.get(pk=world.held.pk).owner is None


def test_clearing_the_owner_on_the_form_takes_the_lead_back_to_the_queue(
    agents: Any, client: Any
) -> None:
    (a,) = agents(1)
    lead = LeadFactory(owner=a, assigned=True)
    manager = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(manager)
    url = reverse("admin:leads_lead_change", args=[lead.pk])
    data = change_form_data(client.get(url))
    data["owner"] = ""
    assert client.post(url, data).status_code == 302
    lead.refresh_from_db()
    assert (lead.owner, lead.status) == (None, "unassigned")
    assert "taken back" in Notice.objects.get(agent=a, lead=lead).message
    attempt = DistributionAttempt.objects.get(lead=lead)
    assert (attempt.outcome, attempt.actor) == ("unassigned", manager)


def test_an_exception_lead_assigned_from_the_queue_gets_its_rules_initial_status(
    agents: Any, post: Any, web: Any, client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    (a,) = agents(1)
    away = UserFactory()
    make_rule(
        pool=make_pool([], name="empty"),
        sources=[web],
        initial_status="qualified",
        initial_activity="qualified",
    )
    lead = post()
    assert lead.status == "exception"
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    queue = reverse("admin:distribution_exception_queue")
    assert f"#{lead.pk}" in client.get(queue).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(queue, {"lead": [lead.pk], "agent": a.pk, "assign": "1"})
        client.post(queue, {"lead": [lead.pk], "agent": away.pk, "assign": "1"})  # no agent
    lead.refresh_from_db()
    assert (lead.owner, lead.status) == (a, "qualified")
    assert Activity.objects.get(lead=lead).kind == "qualified"
    assert [m.to for m in mail.outbox] == [[a.email]]


def test_a_view_only_staff_user_gets_no_assign_action(world: Any, client: Any) -> None:
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_lead"))
    client.force_login(viewer)
    changelist = reverse("admin:leads_lead_changelist")
    assert b"assign_to_agent" not in client.get(changelist).content
    response = client.post(
        changelist,
        {
            "action": "assign_to_agent",
            "_selected_action": [world.held.pk],
            "apply": "1",
            "agent": world.b.pk,
        },
    )
    assert response.status_code in (200, 302, 403)
    assert Lead.objects.get(pk=world.held.pk).owner is None
