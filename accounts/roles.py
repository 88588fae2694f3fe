"""Roles (DESIGN §3 "Roles"): who a signed-in person is, where they land, what groups give.

A role is read from the user, never stored apart from Django's own flags and groups:

* `agent`   — has an `AgentProfile` (the /agent/ pages and the agent API; never the admin);
* `manager` — staff in the `Managers` group (the admin, with the group's permissions);
* `admin`   — a superuser (everything);
* `buyer`   — has a `BuyerProfile` (the /buyer/ pages and the buyer API of their company;
  never the admin or the agent pages).

A person may hold several (an agent who is also a manager).

The groups are created by a data migration (accounts 0003) and kept complete by a
`post_migrate` hook (`groups_sync`): a model added later gets its permissions in Managers
without a migration of its own. The sync only adds.
"""

from __future__ import annotations

import enum
from typing import Any

from django.urls import reverse

MANAGERS = "Managers"
AGENTS = "Agents"

# Managers: every permission of these apps (leads, queues, hopper, simulate, dashboard,
# rules, pools, schedules, buyers' companies and contracts) ...
MANAGER_APPS = ("leads", "crm", "distribution")
# ... and these of accounts: agents' profiles, and reading users (the autocomplete of an
# agent field needs it). Not users' passwords, groups or permissions: no add/change/delete
# of users, nothing of auth; nothing of django_celery_beat (admins only).
MANAGER_EXTRA: dict[str, dict[str, tuple[str, ...]]] = {
    "accounts": {
        "agentprofile": ("add", "change", "view"),
        "buyerprofile": ("add", "change", "view"),
        "user": ("view",),
    }
}
# Agents never reach the admin (not staff); the group says what their pages do.
AGENT_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "leads": {"lead": ("view", "change"), "activity": ("add", "view")},
    "distribution": {
        "offer": ("view", "change"),
        "notice": ("view", "change"),
        "assignment": ("view",),
    },
}


class Role(enum.StrEnum):
    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"
    BUYER = "buyer"


def user_roles(user: Any) -> frozenset[Role]:
    """The roles of a user (empty for an anonymous or inactive one)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    roles: set[Role] = set()
    if hasattr(user, "agent"):
        roles.add(Role.AGENT)
    if hasattr(user, "buyer"):
        roles.add(Role.BUYER)
    if user.is_superuser:
        roles.add(Role.ADMIN)
    elif user.is_staff and user.groups.filter(name=MANAGERS).exists():
        roles.add(Role.MANAGER)
    return frozenset(roles)


def config_role(user: Any) -> Role:
    """The one `role` config as code writes for a person listed under `agents`."""
    if user.is_superuser:
        return Role.ADMIN
    if user.is_staff:
        return Role.MANAGER
    return Role.AGENT


def may_use_admin(user: Any) -> bool:
    """Managers, admins, and any other staff (who see what their permissions allow)."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def home_url(user: Any) -> str | None:
    """Where a person lands after signing in: the admin home for managers and admins (and
    other staff), the agent pages for agents, the buyer pages for buyers; None when no page
    is theirs."""
    if may_use_admin(user):
        return reverse("admin:index")
    roles = user_roles(user)
    if Role.AGENT in roles:
        return reverse("agent:home")
    if Role.BUYER in roles:
        return reverse("buyer:home")
    return None


def _wanted(apps: Any) -> dict[str, list[tuple[str, str]]]:
    """Group name → (app label, codename) of every permission the group should hold."""
    manager: list[tuple[str, str]] = []
    for label in MANAGER_APPS:
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        for model in config.get_models():
            opts = model._meta
            codes = [f"{a}_{opts.model_name}" for a in opts.default_permissions]
            codes += [code for code, _ in opts.permissions]
            manager += [(label, c) for c in codes]
    manager += [
        (label, f"{action}_{model}")
        for label, models in MANAGER_EXTRA.items()
        for model, actions in models.items()
        for action in actions
    ]
    agent = [
        (label, f"{action}_{model}")
        for label, models in AGENT_PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    ]
    return {MANAGERS: manager, AGENTS: agent}


def groups_sync(apps: Any, *, create_missing_permissions: bool = True) -> dict[str, int]:
    """Create the Managers and Agents groups and add the permissions they lack (never
    removes one); returns how many were added per group. APPS is a migration's app registry
    or django.apps.apps."""
    if create_missing_permissions:
        # permissions are normally created after every migration (post_migrate): make them
        # exist now, so that the data migration on a fresh database finds them
        from django.contrib.auth.management import create_permissions

        for config in apps.get_app_configs():
            config.models_module = getattr(config, "models_module", None) or True
            create_permissions(config, verbosity=0, apps=apps)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    added: dict[str, int] = {}
    for name, wanted in _wanted(apps).items():
        group, _ = group_model.objects.get_or_create(name=name)
        have = set(group.permissions.values_list("content_type__app_label", "codename"))
        missing = [w for w in wanted if w not in have]
        perms = [
            p
            for p in permission_model.objects.filter(
                content_type__app_label__in={label for label, _ in missing},
                codename__in={code for _, code in missing},
            ).select_related("content_type")
            if (p.content_type.app_label, p.codename) in set(missing)
        ]
        group.permissions.add(*perms)
        added[name] = len(perms)
    return added


def groups_sync_after_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate: a model added since the data migration gets its Managers permissions
    (runs once, after the auth app's own permissions are created)."""
    from django.apps import apps as global_apps

    # after the last app's: every app's permissions exist by then (auth creates them per app)
    if sender.label != list(global_apps.get_app_configs())[-1].label:
        return
    groups_sync(kwargs.get("apps") or global_apps, create_missing_permissions=False)
