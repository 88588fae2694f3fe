"""Roles (DESIGN §3 "Roles"): groups, config's `role`, one login page, permission checks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from distribution.configuration import config_apply, config_export, load_text
from distribution.models import DistributionWindow, OutboundLead, ReturnStatus
from leads.models import Lead
from tests.factories import AgentFactory, LeadFactory, UserFactory
from tests.factories.marketplace import (
    ContractFactory,
    DistributionWindowFactory,
    MarketplaceLeadFactory,
    OutboundLeadFactory,
)

pytestmark = pytest.mark.django_db


def _perms(group: str) -> set[str]:
    return {
        f"{app}.{code}"
        for app, code in Group.objects.get(name=group).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def manager_user(**fields: object) -> User:
    user = UserFactory(is_staff=True, **fields)
    user.groups.add(Group.objects.get(name="Managers"))
    return user


def view_only_staff() -> User:
    """Staff who may only view: leads, outbound leads, windows (seed: "may only view")."""
    user = UserFactory(email="viewer@example.com", is_staff=True)
    for code in ("view_lead", "view_outboundlead", "view_distributionwindow"):
        user.user_permissions.add(Permission.objects.get(codename=code))
    return user


# --- the groups -------------------------------------------------------------------------


def test_the_managers_and_agents_groups_exist_with_the_permissions_of_their_roles():
    managers, agents = _perms("Managers"), _perms("Agents")

    for perm in (
        "leads.change_lead",
        "distribution.add_outboundlead",  # cherry-pick, sell
        "distribution.change_outboundlead",  # returns
        "distribution.add_distributionwindow",
        "distribution.change_rule",
        "distribution.change_pool",
        "distribution.change_schedule",
        "crm.change_contract",
        "crm.add_company",
        "accounts.change_agentprofile",
        "accounts.view_user",
    ):
        assert perm in managers, perm
    # not users' passwords, groups or permissions; not Celery's internals
    assert not {p for p in managers if p.startswith(("auth.", "django_celery_beat."))}
    assert not {"accounts.add_user", "accounts.change_user", "accounts.delete_user"} & managers
    assert {"leads.view_lead", "leads.add_activity", "distribution.change_offer"} <= agents
    assert not {p for p in agents if "outboundlead" in p or "rule" in p}


# --- config as code ---------------------------------------------------------------------


def _apply(text: str) -> object:
    return config_apply(load_text(text))


def test_config_roles_make_an_agent_a_manager_and_an_admin():
    _apply(
        """
agents:
  - {email: ava@example.com, role: agent}
  - {email: morgan@example.com, role: manager}
  - {email: alex@example.com, role: admin}
"""
    )
    ava, morgan, alex = (
        User.objects.get(email=e)
        for e in ("ava@example.com", "morgan@example.com", "alex@example.com")
    )
    assert (ava.is_staff, ava.is_superuser) == (False, False)
    assert (morgan.is_staff, morgan.is_superuser) == (True, False)  # a manager is no superuser
    assert (alex.is_staff, alex.is_superuser) == (True, True)
    assert set(morgan.groups.values_list("name", flat=True)) == {"Agents", "Managers"}
    assert set(ava.groups.values_list("name", flat=True)) == {"Agents"}
    assert morgan.has_perm("distribution.add_outboundlead")
    assert not morgan.has_perm("accounts.change_user")
    assert not ava.has_perm("distribution.add_outboundlead")

    exported = {row["email"]: row for row in load_text(config_export(only=["agents"]))["agents"]}
    assert {e: r["role"] for e, r in exported.items()} == {
        "alex@example.com": "admin",
        "ava@example.com": "agent",
        "morgan@example.com": "manager",
    }
    assert not any("manager" in row for row in exported.values())


def test_an_older_files_manager_true_is_the_admin_role_and_role_changes_are_reported():
    _apply("agents: [{email: old@example.com, manager: true}]")
    old = User.objects.get(email="old@example.com")
    assert old.is_superuser

    report = _apply("agents: [{email: old@example.com, role: manager}]")
    old.refresh_from_db()
    assert (old.is_staff, old.is_superuser) == (True, False)
    assert "old@example.com (role)" in str(report)
    again = _apply("agents: [{email: old@example.com, role: manager}]")
    assert "(role)" not in str(again)  # idempotent


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("{email: x@example.com, role: boss}", "must be one of agent, manager, admin"),
        ("{email: x@example.com, role: agent, manager: true}", "give one"),
    ],
)
def test_a_wrong_role_is_refused_with_its_path(item, message):
    from distribution.configuration import ConfigError

    with pytest.raises(ConfigError) as refused:
        _apply(f"agents: [{item}]")
    assert message in str(refused.value)
    assert not User.objects.filter(email="x@example.com").exists()


# --- one login page, each role to its pages ---------------------------------------------


def _sign_in(client, user: User, **extra: str) -> str:
    response = client.post(
        reverse("login"), {"username": user.email, "password": "pw", **extra}, follow=True
    )
    assert response.status_code == 200
    return response.redirect_chain[-1][0]


def test_a_manager_signing_in_lands_on_the_admin_home_not_the_agent_page(client):
    assert _sign_in(client, manager_user()) == "/admin/"


def test_each_role_lands_on_its_own_pages(client):
    assert _sign_in(client, AgentFactory()) == "/agent/"
    client.logout()
    assert _sign_in(client, UserFactory(is_staff=True, is_superuser=True)) == "/admin/"
    client.logout()
    both = AgentFactory(is_staff=True)
    both.groups.add(Group.objects.get(name="Managers"))
    assert _sign_in(client, both) == "/admin/"
    assert client.get("/agent/").status_code == 200  # an agent and a manager at once


def test_an_agent_is_never_let_into_the_admin(client):
    agent = AgentFactory()
    # a link into the admin does not take an agent there after signing in
    assert _sign_in(client, agent, next="/admin/leads/lead/") == "/agent/"
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert client.get("/admin/leads/lead/", follow=True).status_code == 403


def test_the_admin_asks_visitors_to_sign_in_on_the_one_login_page(client):
    response = client.get("/admin/leads/lead/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/?next=/admin/leads/lead/")
    manager = manager_user()
    response = client.post(
        response.redirect_chain[-1][0],
        {"username": manager.email, "password": "pw", "next": "/admin/leads/lead/"},
    )
    assert response["Location"] == "/admin/leads/lead/"


def test_the_site_root_sends_each_role_home(client):
    assert client.get("/")["Location"].startswith("/accounts/login/")
    client.force_login(manager_user())
    assert client.get("/")["Location"] == "/admin/"
    client.force_login(AgentFactory())
    assert client.get("/")["Location"] == "/agent/"
    client.force_login(UserFactory())  # no role at all
    assert client.get("/").status_code == 403


# --- a staff user who may only view leads (issue 11, "Tried as a new user would") -------


@pytest.fixture
def viewer(client):
    client.force_login(view_only_staff())
    return client


def test_a_staff_user_who_may_only_view_leads_cannot_cherry_pick_a_lead(viewer):
    contract = ContractFactory()
    lead = MarketplaceLeadFactory(campaign=contract.campaign)
    url = reverse("admin:distribution_outboundlead_cherry_pick", args=[lead.pk])

    assert viewer.get(url).status_code == 403
    assert viewer.post(url, {"contract": contract.pk}).status_code == 403
    assert not OutboundLead.objects.exists()


def test_a_staff_user_who_may_only_view_leads_cannot_sell_by_manual_distribution(viewer):
    contract = ContractFactory()
    lead = MarketplaceLeadFactory(campaign=contract.campaign)
    url = reverse("admin:distribution_outboundlead_distribute", args=[lead.pk])

    assert viewer.get(url).status_code == 200  # reading the page is theirs
    assert viewer.post(url, {"contracts": [str(contract.pk)]}).status_code == 403
    assert not OutboundLead.objects.exists()


def test_a_staff_user_who_may_only_view_leads_cannot_record_a_return(viewer):
    outbound = OutboundLeadFactory()
    url = reverse("admin:distribution_outboundlead_return", args=[outbound.pk])

    assert viewer.post(url, {"reason": "not interested"}).status_code == 403
    outbound.refresh_from_db()
    assert outbound.return_status != ReturnStatus.REQUESTED


def test_a_staff_user_who_may_only_view_leads_cannot_add_or_change_a_window(viewer):
    lead = MarketplaceLeadFactory()
    add = reverse("admin:distribution_distributionwindow_add_to_lead", args=[lead.pk])
    assert viewer.post(add, {"duration": "1h", "every": "15m"}).status_code == 403
    assert not DistributionWindow.objects.filter(lead=lead).exists()

    now = timezone.now()
    window = DistributionWindowFactory(
        ends_at=now + dt.timedelta(days=1), every=dt.timedelta(hours=1), next_check_at=now
    )
    pause = reverse("admin:distribution_distributionwindow_verb", args=[window.pk, "pause"])
    assert viewer.post(pause).status_code == 403
    changelist = reverse("admin:distribution_distributionwindow_changelist")
    viewer.post(changelist, {"action": "pause_windows", "_selected_action": [window.pk]})
    window.refresh_from_db()
    assert window.status == "active"


def test_a_staff_user_who_may_only_view_leads_cannot_assign_from_the_queue(viewer):
    agent = AgentFactory()
    lead = LeadFactory(unassigned=True)
    queue = reverse("admin:distribution_assignment_queue")

    assert viewer.get(queue).status_code == 200  # they may look at the queue
    assert viewer.post(queue, {"lead": [lead.pk], "agent": agent.pk}).status_code == 403
    lead.refresh_from_db()
    assert lead.owner_id is None and lead.status == "unassigned"


def test_a_staff_user_who_may_only_view_cannot_approve_returns_from_the_list(viewer):
    outbound = OutboundLeadFactory(return_status=ReturnStatus.REQUESTED)
    changelist = reverse("admin:distribution_outboundlead_changelist")

    page = viewer.get(changelist).content.decode()
    assert "approve_returns" not in page  # the action is not offered
    viewer.post(changelist, {"action": "approve_returns", "_selected_action": [outbound.pk]})
    outbound.refresh_from_db()
    assert outbound.return_status == ReturnStatus.REQUESTED


def test_a_manager_may_do_all_of_it(client):
    client.force_login(manager_user())
    contract = ContractFactory()
    lead = MarketplaceLeadFactory(campaign=contract.campaign)
    url = reverse("admin:distribution_outboundlead_cherry_pick", args=[lead.pk])

    assert client.post(url, {"contract": contract.pk}).status_code == 302
    outbound = OutboundLead.objects.get(lead=lead)
    returned = reverse("admin:distribution_outboundlead_return", args=[outbound.pk])
    assert client.post(returned, {"reason": "wrong number"}).status_code == 302
    outbound.refresh_from_db()
    assert outbound.return_status == ReturnStatus.REQUESTED
    queue_lead = LeadFactory(unassigned=True)
    agent = AgentFactory()
    queue = reverse("admin:distribution_assignment_queue")
    client.post(queue, {"lead": [queue_lead.pk], "agent": agent.pk})
    assert Lead.objects.get(pk=queue_lead.pk).owner == agent


# --- the managers' admin home -----------------------------------------------------------


def test_the_admin_home_leads_a_manager_to_the_daily_work_without_celery_internals(client):
    client.force_login(manager_user())
    page = client.get("/admin/").content.decode()

    for name, text in [
        ("admin:distribution_assignment_queue", "Lead Assignment queue"),
        ("admin:distribution_exception_queue", "Lead Exception queue"),
        ("admin:distribution_hopper", "Hopper"),
        ("admin:distribution_outboundlead_hopper", "Cherry-pick hopper"),
        ("admin:distribution_simulate", "Simulate"),
        ("admin-dashboard", "Dashboard"),
        ("admin:distribution_outboundlead_turnover", "Turnover report"),
    ]:
        assert f'href="{reverse(name)}">{text}' in page, name
    assert page.index("Lead Assignment queue") < page.index('class="app-leads')  # work first
    assert "Periodic tasks" not in page and "django_celery_beat" not in page
    assert "Groups" not in page  # no groups or permissions for managers


def test_an_admin_still_sees_celerys_schedules(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert "django_celery_beat" in page and "Lead Assignment queue" in page


def test_staff_without_permissions_see_no_work_links(client):
    client.force_login(UserFactory(is_staff=True))
    page = client.get("/admin/").content.decode()
    assert "Lead Assignment queue" not in page


# --- the demo ---------------------------------------------------------------------------


def test_the_demo_has_a_manager_who_is_not_a_superuser_and_an_admin(settings):
    from django.contrib.auth import authenticate
    from django.core.management import call_command

    from distribution.management.commands.run_embedded import DEMO_LOGINS

    call_command("apply_config", "distribution/demo/demo.yaml", verbosity=0)
    logins = {role: (email, password) for role, email, password in DEMO_LOGINS}
    manager = authenticate(username=logins["manager"][0], password=logins["manager"][1])
    boss = authenticate(username=logins["admin"][0], password=logins["admin"][1])
    assert manager is not None and boss is not None
    assert manager.is_staff and not manager.is_superuser
    assert manager.groups.filter(name="Managers").exists()
    assert boss.is_superuser
    assert authenticate(username=logins["agent"][0], password=logins["agent"][1])
