"""The authorisation matrix: every page, admin view and API endpoint, for every role.

The URLs come from the URL resolver, not from a list kept by hand: a view added without
its check (a custom admin view without `permission_required`, an agent page without
`agent_required`, a new top-level URL nobody classified) makes this test fail.

Roles: a visitor (anonymous), a lead source (its bearer token), an agent, a manager, an
admin, an agent who is also a manager, a staff user without any permission, and a buyer
(their session and their bearer token). Each URL
is asked with GET (and, where the role is refused, POST too): the answer must be the one
the role's row says — allowed (the page, a redirect inside it, a 404 of an object not
theirs, a 409 of a lost race...) or refused (401, 403, or the login page); never a 5xx.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from distribution.models import (
    Assignment,
    Automation,
    DeliveryAttempt,
    DistributionAttempt,
    GeoPlace,
    Notice,
    Offer,
    Organisation,
    Pool,
    PoolMember,
    PostalCode,
    Rule,
    Schedule,
    WebhookAttempt,
)
from leads.models import Activity
from tests.factories import AgentFactory, LeadFactory, SourceFactory, UserFactory
from tests.factories.marketplace import (
    BuyerFactory,
    ContractFactory,
    ContractGroupFactory,
    DistributionWindowFactory,
    OutboundLeadFactory,
    WorkflowFactory,
)

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "source", "agent", "staff_without_permissions", "manager", "admin",
         "agent_and_manager", "buyer")  # fmt: skip
SIGNED_IN = {"agent", "staff_without_permissions", "manager", "admin", "agent_and_manager",
             "buyer"}  # fmt: skip
ADMIN_USERS = {"staff_without_permissions", "manager", "admin", "agent_and_manager"}
MANAGERS = {"manager", "agent_and_manager"}
AGENTS = {"agent", "agent_and_manager"}

# The managers' model permissions, as DESIGN §3 "Roles" says (written here, not read
# from accounts.roles, so that a change there shows up as a failure): everything of
# leads, queues, rules, pools, schedules, buyers and contracts; agents' profiles but not
# deleting them; reading users, never their passwords, groups or permissions; nothing of
# Celery's schedules.
MANAGER_MODELS: dict[str, set[str]] = {
    "leads": {"view", "add", "change", "delete"},
    "crm": {"view", "add", "change", "delete"},
    "distribution": {"view", "add", "change", "delete"},
    "accounts.agentprofile": {"view", "add", "change"},
    "accounts.buyerprofile": {"view", "add", "change"},
    "accounts.user": {"view"},
}

# URLs the matrix does not ask, each with why.
NOT_ASKED = {
    "admin:logout": "signing out (POST only); every role may",
    "logout": "signing out (POST only); every role may",
    "admin:view_on_site": "a redirect to an object's own page, which checks itself",
    "admin:catch_all": "Django's 404 for unknown admin URLs",
}
# Models whose object pages were not asked: the world holds none of them (add one there).
WITHOUT_OBJECT: set[str] = set()
PUBLIC = {"healthz", "login", "admin:login", "api:openapi-json", "api:openapi-view",
          "api:api-root"}  # fmt: skip


LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


@dataclass
class Entry:
    name: str  # the URL's name (or a made-up one for unnamed patterns)
    route: str  # the pattern
    path: str  # a concrete path


def _patterns(resolver: URLResolver, prefix: str = "", ns: str = "") -> list[tuple[str, str]]:
    found = []
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            found += _patterns(
                p, prefix + str(p.pattern), ns + (f"{p.namespace}:" if p.namespace else "")
            )
        elif isinstance(p, URLPattern):
            name = ns + (p.name or "")
            if not p.name:
                name = "admin:catch_all" if "(?P<url>" in str(p.pattern) else f"{ns}<unnamed>"
            found.append((name, prefix + str(p.pattern)))
    return found


def _model_of(route: str) -> Any:
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if not match:
        return None
    try:
        return apps.get_model(match[1], match[2])
    except LookupError:
        return None


def _concrete(route: str, ids: dict[str, Any]) -> list[str]:
    """Paths for ROUTE with its arguments filled from IDS (one per admin app for the
    app-index regex)."""
    if route.startswith("admin/^(?P<app_label>"):
        labels = re.search(r"\(\?P<app_label>([^)]*)\)", route)
        assert labels
        return [f"/admin/{label}/" for label in labels[1].split("|")]
    model = _model_of(route)

    def value(m: re.Match[str]) -> str:
        name = m[1].split(":")[-1]
        if name in ("object_id", "id"):
            if model is None:
                return "1"
            obj = model._default_manager.order_by("pk").first()
            if obj is None:  # the admin answers a missing object before its permissions
                raise LookupError(model.__name__)
            return str(obj.pk)
        assert name in ids, f"{route}: no value for <{name}>; add one to the world's ids"
        return str(ids[name])

    try:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", value, route)  # a re_path's groups
        path = re.sub(r"<([^>]+)>", value, path).replace("^", "").replace("$", "")
    except LookupError as missing:
        WITHOUT_OBJECT.add(str(missing))
        return []  # its list and add pages are still asked
    return ["/" + path]


def urls(ids: dict[str, Any]) -> list[Entry]:
    entries = []
    for name, route in _patterns(get_resolver()):
        if name in NOT_ASKED:
            continue
        for path in _concrete(route, ids):
            entries.append(Entry(name, route, path))
    return entries


def _admin_allows(model: Any, kind: str) -> bool:
    """What the admin's own class allows at all (a superuser): some models have no add
    page (created by distribution) and sold leads are never deleted."""
    from django.test import RequestFactory

    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/")
    request.user = UserFactory.build(is_staff=True, is_superuser=True, is_active=True)
    obj = model._default_manager.order_by("pk").first()
    return {
        "add": lambda: model_admin.has_add_permission(request),
        "delete": lambda: model_admin.has_delete_permission(request, obj),
        "change": lambda: model_admin.has_change_permission(request, obj),
    }.get(kind, lambda: model_admin.has_view_or_change_permission(request, obj))()


def _kind(entry: Entry) -> str:
    if entry.name.endswith("_add"):
        return "add"
    if entry.name.endswith("_delete"):
        return "delete"
    if entry.name.endswith("_password_change"):
        return "change"
    return "view"  # changelist, change page (read-only without change), history


def expected(entry: Entry, role: str) -> bool | None:
    """Whether ROLE may open ENTRY; None when anyone may (public)."""
    name, path = entry.name, entry.path
    if name in PUBLIC or path == "/admin/login/":
        return None
    if name == "home":
        return role in SIGNED_IN
    if path.startswith("/agent/"):
        return role in AGENTS
    if path.startswith(("/buyer/", "/api/v1/buyer/")):
        return role == "buyer"  # the buyer pages and the buyer API: buyers only
    if path.startswith("/api/v1/"):
        if name in ("api:post_lead", "api:ping"):
            return role == "source"
        if name == "api:get_lead":
            return role in AGENTS | {"source"}
        return role in AGENTS  # the agent API
    if path.startswith("/admin/"):
        if name in ("admin:index", "admin:password_change", "admin:password_change_done",
                    "admin:jsi18n"):  # fmt: skip
            return role in ADMIN_USERS
        if name == "admin:app_list":
            label = path.strip("/").split("/")[1]
            return role == "admin" or (
                role in MANAGERS and any(k.split(".")[0] == label for k in MANAGER_MODELS)
            )
        model = _model_of(entry.route)
        if model is not None and model in admin.site._registry and _is_model_page(entry):
            kind = _kind(entry)
            if not _admin_allows(model, kind):
                return False
            opts = model._meta
            may = MANAGER_MODELS.get(
                f"{opts.app_label}.{opts.model_name}", MANAGER_MODELS.get(opts.app_label, set())
            )
            return role == "admin" or (role in MANAGERS and kind in may)
        if name == "admin:autocomplete":
            return role in {"admin"} | MANAGERS
        # a custom admin view (queues, hoppers, simulate, dashboard, windows, returns...):
        # managers and admins; never staff without the permissions, agents or visitors
        return role in {"admin"} | MANAGERS
    raise AssertionError(f"{name} ({entry.route}) is in no zone: say in this test who may open it")


def _is_model_page(entry: Entry) -> bool:
    return bool(
        re.search(r"_(changelist|add|change|delete|history|password_change)$", entry.name)
        or entry.name == "admin:<unnamed>"
    )


# --------------------------------------------------------------------------- the world


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    """One of everything the URLs name, and a client per role."""
    source = SourceFactory()
    agent = AgentFactory(email="agent@example.com")
    both = AgentFactory(email="both@example.com", is_staff=True)
    manager = UserFactory(email="manager@example.com", is_staff=True)
    managers = Group.objects.get(name="Managers")
    manager.groups.add(managers)
    both.groups.add(managers)
    boss = UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    bare = UserFactory(email="staff@example.com", is_staff=True)

    lead = LeadFactory(source=source, owner=agent, assigned=True)
    waiting = LeadFactory(source=source, status="waiting", distribution_state="done")
    offer = Offer.objects.create(lead=LeadFactory(source=source, status="offered"), agent=agent)
    Activity.objects.create(lead=lead, agent=agent, kind=Activity.Kind.NOTE, note="hi")
    Notice.objects.create(agent=agent, lead=lead, message="assigned")
    Assignment.objects.create(lead=lead, agent=agent, method="manual")
    DistributionAttempt.objects.create(lead=lead, trigger="arrival", outcome="assigned")
    WebhookAttempt.objects.create(
        lead=lead, event="offer", url="http://127.0.0.1:9/ring", attempt=1, outcome="failed"
    )
    schedule = Schedule.objects.create(name="hours", timezone="UTC")
    Organisation.objects.update_or_create(pk=1, defaults={"business_hours": schedule})
    pool = Pool.objects.create(name="pool")
    PoolMember.objects.create(pool=pool, agent=agent)
    Rule.objects.create(name="rule", pool=pool, schedule=schedule, priority=1)
    Automation.objects.create(name="auto", trigger="created", action="user", target_user=agent)
    contract = ContractFactory(group=ContractGroupFactory())
    every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="a task", task="x.y", interval=every_hour)
    CrontabSchedule.objects.create()
    SolarSchedule.objects.create(event="sunrise", latitude=52.37, longitude=4.9)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    WorkflowFactory(campaign=contract.campaign)
    now = timezone.now()
    window = DistributionWindowFactory(
        ends_at=now + dt.timedelta(days=1), every=dt.timedelta(hours=1), next_check_at=now
    )
    outbound = OutboundLeadFactory(contract=contract)
    GeoPlace.objects.create(
        key="NL|1011|amsterdam", country="NL", postcode="1011", city="amsterdam",
        latitude=52.37, longitude=4.9, source="table", looked_up_at=now,
    )  # fmt: skip
    PostalCode.objects.create(
        country="NL", postal_code="1011", postal_key="1011", place_name="Amsterdam",
        place_key="amsterdam", latitude=52.37, longitude=4.9,
    )  # fmt: skip
    buyer = BuyerFactory(email="buyer@example.com", company=contract.company)
    DeliveryAttempt.objects.create(
        outbound=outbound, lead=outbound.lead, attempt=1, method="webhook", outcome="failed"
    )

    clients: dict[str, Client] = {}
    for role, user in {
        "anonymous": None,
        "source": None,
        "agent": agent,
        "staff_without_permissions": bare,
        "manager": manager,
        "admin": boss,
        "agent_and_manager": both,
        "buyer": buyer,
    }.items():
        headers = {}
        if role == "source":
            headers = {"HTTP_AUTHORIZATION": f"Bearer {source.plain_token}"}
        elif role in AGENTS | {"buyer"}:
            headers = {"HTTP_AUTHORIZATION": f"Bearer {user.plain_token}"}  # type: ignore[union-attr]
        client = Client(**headers)
        if user is not None:
            client.force_login(user)
        clients[role] = client
    ids = {
        "lead_id": lead.pk,
        "offer_id": offer.pk,
        "window_id": window.pk,
        "outbound_id": outbound.pk,
        "contract_id": contract.pk,
        "verb": "pause",
        "waiting": waiting.pk,
    }
    return {"clients": clients, "ids": ids}


def outcome(response: Any, admin_zone: bool, api_zone: bool) -> str:
    """allowed / refused / error, from the last response of a followed request."""
    status = response.status_code
    final = response.redirect_chain[-1][0] if response.redirect_chain else ""
    if status >= 500:
        return "error"
    if status == 401 or (final.startswith(LOGIN_PAGES) and status == 200):
        return "refused"
    if status == 403 and not api_zone:  # the API's 403 is "not yours to take", past its auth
        return "refused"
    if admin_zone and status == 404:  # the admin answers 404 for an app one may not see
        return "refused"
    return "allowed"


def ask(client: Client, method: str, entry: Entry) -> Any:
    data = {}
    if entry.name == "admin:autocomplete":
        data = {"app_label": "distribution", "model_name": "poolmember", "field_name": "agent"}
    if method == "GET":
        return client.get(entry.path, data, follow=True)
    return client.post(entry.path, data, follow=True)


def mismatches(client: Client, role: str, ids: dict[str, Any]) -> list[str]:
    """Every URL whose answer to ROLE differs from its row (or is a server error)."""
    wrong = []
    entries = urls(ids)
    assert len(entries) > 150  # the resolver was read: admin, agent pages and the API
    for entry in entries:
        allowed = expected(entry, role)
        admin_zone = entry.path.startswith("/admin/")
        api = entry.path.startswith("/api/")
        for method in ("GET", "POST"):
            if method == "POST" and allowed and not api:
                continue  # a permitted role is not made to write everything
            response = ask(client, method, entry)
            if response.status_code == 405:
                continue  # not this method (the API checks it before the token)
            got = outcome(response, admin_zone, api)
            if got == "error":
                wrong.append(f"{method} {entry.path}: {response.status_code} (server error)")
            elif allowed is not None and got != ("allowed" if allowed else "refused"):
                wrong.append(
                    f"{method} {entry.path} [{entry.name}]: {got}, expected "
                    f"{'allowed' if allowed else 'refused'} ({response.status_code})"
                )
    return wrong


@pytest.mark.parametrize("role", ROLES)
def test_every_url_answers_each_role_as_its_row_says(world, role):
    wrong = mismatches(world["clients"][role], role, world["ids"])
    assert not wrong, f"{role}:\n" + "\n".join(wrong)
    # every other page was asked; a model of the admin with none in the world is named here
    assert not WITHOUT_OBJECT, f"add one of each to world(): {sorted(WITHOUT_OBJECT)}"


@pytest.mark.urls("tests.accounts.unprotected_urls")
def test_the_matrix_finds_a_custom_admin_view_added_without_its_check(world):
    """A screen wrapped only in admin_view (staff login, no model permission) is reported:
    staff without permissions open it, and so would an agent's page without its check."""
    wrong = mismatches(
        world["clients"]["staff_without_permissions"], "staff_without_permissions", world["ids"]
    )
    assert wrong == [
        "GET /admin/distribution/new-screen/ [<unnamed>]: allowed, expected refused (200)",
        "POST /admin/distribution/new-screen/ [<unnamed>]: allowed, expected refused (200)",
        "GET /agent/new-page/ [<unnamed>]: allowed, expected refused (200)",
        "POST /agent/new-page/ [<unnamed>]: allowed, expected refused (200)",
    ]
    anonymous = mismatches(world["clients"]["anonymous"], "anonymous", world["ids"])
    assert "GET /agent/new-page/ [<unnamed>]: allowed, expected refused (200)" in anonymous
