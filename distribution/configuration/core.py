"""Sections owned by the foundation: agents, sources, campaigns."""

from __future__ import annotations

import abc
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug

from accounts.models import AgentProfile, User
from accounts.roles import Role, config_role
from accounts.services import user_set_role
from accounts.tokens import hash_token
from leads.models import Campaign, Source

from .base import Ctx, Section, assign_changed, each_item, register, save_by_key


def _token_hash(item: dict[str, Any], path: str, ctx: Ctx) -> str | None:
    """A token given in plain (`token`) or as its digest (`token_sha256`, what export
    writes); None when neither is given (the stored token is kept)."""
    if item.get("token"):
        if len(str(item["token"])) < 16:
            ctx.error(f"{path}.token", "must be at least 16 characters")
            return None
        return hash_token(str(item["token"]))
    digest = item.get("token_sha256")
    if digest:
        if len(str(digest)) != 64:
            ctx.error(f"{path}.token_sha256", "must be a 64-character SHA-256 hex digest")
            return None
        return str(digest)
    return None


@register
class AgentsSection(Section):
    key = "agents"
    natural_key = "email"
    fields = (
        "email",
        "name",
        "phone",
        "timezone",
        "active",
        "available",
        "token",
        "token_sha256",
        "password",
        "role",
        "manager",
        "schedule",
    )

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        seen: set[str] = set()

        def one(item: dict[str, Any], path: str) -> None:
            email = str(ctx.require(item, "email", path) or "").strip().lower()
            if not email:
                return
            try:
                validate_email(email)
            except ValidationError:
                ctx.error(f"{path}.email", "not a valid e-mail")
                return
            if email in seen:
                ctx.error(f"{path}.email", f"{email} is listed twice")
                return
            seen.add(email)
            tz = item.get("timezone") or "UTC"
            if not ctx.known_timezone(tz, f"{path}.timezone"):
                return
            digest = _token_hash(item, path, ctx)
            if (
                digest
                and AgentProfile.objects.filter(api_token_hash=digest)
                .exclude(user__email=email)
                .exists()
            ):
                ctx.error(f"{path}.token", "is already used by another agent")
                return
            user_values: dict[str, Any] = {
                "username": email,
                "display_name": str(item.get("name") or ""),
            }
            valid, role = self._role(item, path, ctx)
            if not valid:
                return
            values: dict[str, Any] = {
                "phone": str(item.get("phone") or ""),
                "timezone": tz,
                "active": ctx.as_bool(item.get("active"), f"{path}.active", True),
                "available": ctx.as_bool(item.get("available"), f"{path}.available", True),
            }
            if digest:
                values["api_token_hash"] = digest
            user, created, changed = save_by_key(User, {"email": email}, user_values)
            if role is not None or created:
                changed += user_set_role(user=user, role=role or Role.AGENT)
            if item.get("password") and not user.check_password(str(item["password"])):
                user.set_password(str(item["password"]))
                user.save(update_fields=["password"])
            profile = AgentProfile.objects.filter(user=user).first()
            if profile is None:
                AgentProfile.objects.create(user=user, **values)
                changed.append("agent profile")
            else:
                profile_changed = assign_changed(profile, values)
                if profile_changed:
                    profile.save(update_fields=profile_changed)
                changed += profile_changed
            shown = ["token" if c == "api_token_hash" else c for c in changed]
            ctx.report.count_saved(self.key, email, created=created, changed=shown)
            status = "created" if created else "changed" if changed else "unchanged"
            if "schedule" in item:  # schedules are applied after agents: set it then
                wanted = str(item["schedule"] or "").strip()
                ctx.later.append(lambda: self._set_schedule(ctx, user, wanted, path, status))

        each_item(ctx, self.key, items, self.fields, one)

    def _role(self, item: dict[str, Any], path: str, ctx: Ctx) -> tuple[bool, Role | None]:
        """Whether the item's role is valid, and the role: `role`, or an older file's
        `manager` (true = admin, false = agent); None when neither is given (kept)."""
        role: Role | None = None
        if item.get("role") is not None:
            try:
                role = Role(str(item["role"]).strip().lower())
            except ValueError:
                role = None
            if role is None or role is Role.BUYER:  # buyers are listed under `buyers`
                ctx.error(f"{path}.role", "must be one of agent, manager, admin")
                return False, None
        if "manager" in item:
            manager = ctx.as_bool(item["manager"], f"{path}.manager", False)
            old = Role.ADMIN if manager else Role.AGENT
            if role is not None and role is not old:
                ctx.error(f"{path}.manager", f"says {old}, but role says {role}: give one")
                return False, None
            role = old
        return True, role

    def _set_schedule(self, ctx: Ctx, user: User, name: str, path: str, status: str) -> None:
        """The agent's own working hours, by schedule name ('' or null: always)."""
        from distribution.models import Schedule

        schedule = None
        if name:
            schedule = Schedule.objects.filter(name=name).first()
            if schedule is None:
                ctx.error(f"{path}.schedule", f"no schedule {name!r}")
                return
        profile = AgentProfile.objects.get(user=user)
        if profile.schedule_id == (schedule.pk if schedule else None):
            return
        profile.schedule = schedule
        profile.save(update_fields=["schedule"])
        if status == "unchanged":
            ctx.report.recount(self.key, "unchanged", "changed", f"{user.email} (schedule)")

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for p in AgentProfile.objects.select_related("user", "schedule").order_by("user__email"):
            row: dict[str, Any] = {
                "email": p.user.email,
                "name": p.user.display_name,
                "phone": p.phone,
                "timezone": p.timezone,
                "active": p.active,
                "available": p.available,
            }
            if p.schedule is not None:
                row["schedule"] = p.schedule.name
            row["role"] = str(config_role(p.user))
            if p.api_token_hash:
                row["token_sha256"] = p.api_token_hash
            rows.append(row)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        named = {str(e).lower() for e in named if e}
        for p in AgentProfile.objects.select_related("user").filter(active=True):
            if p.user.email not in named:
                ctx.switch_off(self.key, p, "active", str(p.user.email))


class SlugSection(Section):
    """A section whose items are keyed by a slug: each must be a valid slug, named once."""

    natural_key = "slug"

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        seen: set[str] = set()

        def one(item: dict[str, Any], path: str) -> None:
            slug = ctx.require(item, "slug", path)
            if not slug:
                return
            try:
                validate_slug(str(slug))
            except ValidationError:
                ctx.error(f"{path}.slug", f"{slug!r} is not a slug (letters, digits, - and _)")
                return
            # a slug given twice would be upserted twice: never "no changes" on re-apply
            if str(slug) in seen:
                ctx.error(f"{path}.slug", f"{slug} is listed twice")
                return
            seen.add(str(slug))
            self.apply_item(item, path, slug, ctx)

        each_item(ctx, self.key, items, self.fields, one)

    @abc.abstractmethod
    def apply_item(self, item: dict[str, Any], path: str, slug: Any, ctx: Ctx) -> None:
        """Validate and upsert one item whose SLUG passed the checks."""


@register
class SourcesSection(SlugSection):
    key = "sources"
    fields = ("slug", "name", "token", "token_sha256", "active")

    def apply_item(self, item: dict[str, Any], path: str, slug: Any, ctx: Ctx) -> None:
        digest = _token_hash(item, path, ctx)
        if digest and Source.objects.filter(token_hash=digest).exclude(slug=slug).exists():
            ctx.error(f"{path}.token", "is already used by another source")
            return
        values: dict[str, Any] = {
            "name": str(item.get("name") or slug),
            "active": ctx.as_bool(item.get("active"), f"{path}.active", True),
        }
        if digest:
            values["token_hash"] = digest
        ctx.upsert(self.key, Source, {"slug": slug}, values, str(slug))

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for s in Source.objects.order_by("slug"):
            row: dict[str, Any] = {"slug": s.slug, "name": s.name, "active": s.active}
            if s.token_hash:
                row["token_sha256"] = s.token_hash
            rows.append(row)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for s in Source.objects.filter(active=True).exclude(slug__in=named):
            ctx.switch_off(self.key, s, "active", s.slug)


@register
class CampaignsSection(SlugSection):
    key = "campaigns"
    fields = ("slug", "name")

    def apply_item(self, item: dict[str, Any], path: str, slug: Any, ctx: Ctx) -> None:
        values = {"name": str(item.get("name") or slug)}
        ctx.upsert(self.key, Campaign, {"slug": slug}, values, str(slug))

    def export(self) -> list[dict[str, Any]]:
        return [{"slug": c.slug, "name": c.name} for c in Campaign.objects.order_by("slug")]

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for c in Campaign.objects.exclude(slug__in=named).filter(leads__isnull=True):
            c.delete()
            ctx.report.count(self.key, "removed", c.slug)
