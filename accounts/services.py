"""The writers of accounts: a person's role (flags and groups), buyers' tokens."""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.models import Group

from accounts.models import BuyerProfile, User
from accounts.roles import AGENTS, MANAGERS, Role, groups_sync
from accounts.tokens import hash_token, new_token


def user_set_role(*, user: User, role: Role) -> list[str]:
    """Give a person listed under `agents` one role (config as code): flags and groups.
    Everyone listed is in Agents; a manager is staff in Managers; an admin a superuser.
    Returns the names of what changed."""
    changed: list[str] = []
    staff, superuser = role in (Role.MANAGER, Role.ADMIN), role is Role.ADMIN
    if user.is_staff != staff or user.is_superuser != superuser:
        user.is_staff, user.is_superuser = staff, superuser
        user.save(update_fields=["is_staff", "is_superuser"])
        changed.append("role")
    want = {AGENTS, MANAGERS} if role is not Role.AGENT else {AGENTS}
    have = set(user.groups.filter(name__in=[AGENTS, MANAGERS]).values_list("name", flat=True))
    if want != have:
        groups = {g.name: g for g in Group.objects.filter(name__in=[AGENTS, MANAGERS])}
        if len(groups) < 2:  # deleted by hand: made again, with their permissions
            groups_sync(global_apps)
            groups = {g.name: g for g in Group.objects.filter(name__in=[AGENTS, MANAGERS])}
        user.groups.add(*[groups[n] for n in want - have])
        user.groups.remove(*[groups[n] for n in have - want if n in groups])
        if "role" not in changed:
            changed.append("role")
    return changed


def buyer_issue_token(*, profile_id: int) -> str:
    """A fresh API token for a buyer (the old one stops working); returns it in plain,
    the only time it is seen."""
    token = new_token("buy")
    BuyerProfile.objects.filter(pk=profile_id).update(api_token_hash=hash_token(token))
    return token
