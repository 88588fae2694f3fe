"""The `buyers` section (DESIGN §7): buyers' users, each of one company, with a password to
sign in at the shared login and a token for the buyer API."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import BuyerProfile, User
from crm.models import Company

from .base import Ctx, Section, assign_changed, each_item, register, save_by_key
from .core import _token_hash


@register
class BuyersSection(Section):
    key = "buyers"
    natural_key = "email"
    fields = ("email", "name", "company", "token", "token_sha256", "password")

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        seen: set[str] = set()

        def one(item: dict[str, Any], path: str) -> None:
            email = str(ctx.require(item, "email", path) or "").strip().lower()
            company = ctx.ref(
                Company, "name", ctx.require(item, "company", path), f"{path}.company", "company"
            )
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
            digest = _token_hash(item, path, ctx)
            if (
                digest
                and BuyerProfile.objects.filter(api_token_hash=digest)
                .exclude(user__email=email)
                .exists()
            ):
                ctx.error(f"{path}.token", "is already used by another buyer")
                return
            if company is None:
                return
            user_values: dict[str, Any] = {"username": email}
            if "name" in item:
                user_values["display_name"] = str(item.get("name") or "")
            user, created, changed = save_by_key(User, {"email": email}, user_values)
            if item.get("password") and not user.check_password(str(item["password"])):
                user.set_password(str(item["password"]))
                user.save(update_fields=["password"])
                if not created:
                    changed.append("password")
            values: dict[str, Any] = {"company": company}
            if digest:
                values["api_token_hash"] = digest
            profile = BuyerProfile.objects.filter(user=user).first()
            if profile is None:
                BuyerProfile.objects.create(user=user, **values)
                if not created:
                    changed.append("buyer profile")
            else:
                profile_changed = assign_changed(profile, values)
                if profile_changed:
                    profile.save(update_fields=profile_changed)
                changed += profile_changed
            shown = ["token" if c == "api_token_hash" else c for c in changed]
            ctx.report.count_saved(self.key, email, created=created, changed=shown)

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for p in BuyerProfile.objects.select_related("user", "company").order_by("user__email"):
            row: dict[str, Any] = {
                "email": p.user.email,
                "name": p.user.display_name,
                "company": p.company.name,
            }
            if p.api_token_hash:
                row["token_sha256"] = p.api_token_hash
            rows.append(row)
        return rows
