"""Sections owned by the marketplace: companies, contracts, workflows (DESIGN §7).

Natural keys: a company's and a contract's `name`, a workflow's `campaign` slug. Nested
lists (a company's locations, a contract's delivery hours, a workflow's selection rules)
describe the whole set: applying a company replaces its locations with those listed.
Top-level items are only upserted; `--prune` removes or deactivates the unnamed ones.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from django.conf import settings

from crm.models import (
    Company,
    Contract,
    ContractGroup,
    DeliveryFormat,
    DeliveryInterval,
    DeliveryMethod,
    Location,
    default_return_window,
)
from distribution.models import SelectionMode, SelectionRule, Workflow, WorkflowMode
from leads.models import Campaign

from .base import (
    DAYS,
    Ctx,
    Section,
    each_item,
    format_duration,
    format_time,
    plain,
    register,
    save_by_key,
    save_fields,
)

PERIODS = ("day", "week", "month")
DELIVERY_KEYS = (
    "method",
    "url",
    "format",
    "headers",
    "mapping",
    "secret",
    "timeout",
    "accept",
    "reason_field",
    "retries",
    "retry_after",
    "email",
)
DELIVERY_DEFAULTS: dict[str, Any] = {
    f.name: f.get_default()
    for f in Contract._meta.concrete_fields
    if f.name.startswith("delivery_")
}


def _non_negative(ctx: Ctx, value: Any, path: str) -> Decimal | None:
    number = ctx.as_decimal(value, path)
    if number is not None and number < 0:
        ctx.error(path, "must not be negative")
        return None
    return number


def _plain_float(value: float | None) -> Any:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


# --- companies ----------------------------------------------------------------------------


@register
class CompaniesSection(Section):
    key = "companies"
    natural_key = "name"
    fields = ("name", "active", "locations")

    def _locations(self, ctx: Ctx, value: Any, path: str) -> dict[str, tuple[float, float]] | None:
        if value in (None, ""):
            return {}
        if not isinstance(value, list):
            ctx.error(path, "must be a list of {name, latitude, longitude}")
            return None
        out: dict[str, tuple[float, float]] = {}
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if not ctx.known_keys(item, ("name", "latitude", "longitude"), p):
                continue
            name = str(item.get("name") or f"location {i + 1}")
            lat = ctx.as_float(ctx.require(item, "latitude", p), f"{p}.latitude", -90, 90)
            lon = ctx.as_float(ctx.require(item, "longitude", p), f"{p}.longitude", -180, 180)
            if name in out:
                ctx.error(f"{p}.name", f"{name!r} is listed twice")
                continue
            if lat is not None and lon is not None:
                out[name] = (lat, lon)
        return out

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        seen: set[str] = set()

        def one(item: dict[str, Any], path: str) -> None:
            name = ctx.require(item, "name", path)
            if not name:
                return
            name = str(name)
            if name in seen:
                ctx.error(f"{path}.name", f"{name!r} is listed twice")
                return
            seen.add(name)
            active = ctx.as_bool(item.get("active"), f"{path}.active", True)
            locations = self._locations(ctx, item.get("locations"), f"{path}.locations")
            if locations is None or ctx.errors:
                return
            company, created, changed = save_by_key(Company, {"name": name}, {"active": active})
            current = {loc.name: loc for loc in company.locations.all()} if not created else {}
            moved = False
            for loc_name, (lat, lon) in locations.items():
                loc = current.pop(loc_name, None)
                if loc is None:
                    Location.objects.create(
                        company=company, name=loc_name, latitude=lat, longitude=lon
                    )
                    moved = True
                elif save_fields(loc, {"latitude": lat, "longitude": lon}):
                    moved = True
            if current:
                Location.objects.filter(pk__in=[loc.pk for loc in current.values()]).delete()
                moved = True
            if moved and not created:
                changed.append("locations")
            ctx.report.count_saved(self.key, name, created=created, changed=changed)

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for company in Company.objects.prefetch_related("locations").order_by("name"):
            row: dict[str, Any] = {"name": company.name}
            if not company.active:
                row["active"] = False
            row["locations"] = [
                {"name": loc.name, "latitude": loc.latitude, "longitude": loc.longitude}
                for loc in sorted(company.locations.all(), key=lambda x: x.name)
            ]
            rows.append(row)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for company in Company.objects.exclude(name__in=named):
            if company.contracts.exists():
                if company.active:
                    ctx.switch_off(self.key, company, "active", company.name)
            else:
                company.delete()
                ctx.report.count(self.key, "removed", company.name)


# --- contracts ----------------------------------------------------------------------------


def _return_window(ctx: Ctx, value: Any, path: str) -> dt.timedelta:
    """`return_window: "7d"` (DESIGN §4: default 7 days; "0s" = no returns)."""
    if value in (None, ""):
        return default_return_window()
    window = ctx.as_duration(value, f"{path}.return_window")
    return window if window is not None else default_return_window()


@register
class ContractsSection(Section):
    key = "contracts"
    natural_key = "name"
    fields = (
        "name",
        "company",
        "campaign",
        "price",
        "quality_score",
        "trial",
        "active",
        "paused",
        "starts",
        "ends",
        "radius_km",
        "max_share_count",
        "caps",
        "budget",
        "timezone",
        "max_lead_age",
        "min_lead_score",
        "return_window",
        "group",
        "delivery_hours",
        "delivery",
    )

    def _str_map(self, ctx: Ctx, value: Any, path: str) -> dict[str, str]:
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            ctx.error(path, "must be a mapping")
            return {}
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def _delivery(self, ctx: Ctx, value: Any, path: str) -> dict[str, Any]:
        """`delivery: {method, url, …}` → the contract's delivery_* fields (DESIGN §7)."""
        out = dict(DELIVERY_DEFAULTS)
        if value in (None, "") or not ctx.known_keys(value, DELIVERY_KEYS, path):
            return out
        method = ctx.as_choice(
            value.get("method"), f"{path}.method", DeliveryMethod.values, DeliveryMethod.PORTAL
        )
        url = str(value.get("url") or "")
        if url and not url.startswith(("http://", "https://")):
            ctx.error(f"{path}.url", f"{url!r} is not an http(s) URL")
        if method == DeliveryMethod.WEBHOOK and not url:
            ctx.error(f"{path}.url", "is required for a webhook")
        email = str(value.get("email") or "")
        if method == DeliveryMethod.EMAIL and not email:
            ctx.error(f"{path}.email", "is required for e-mail delivery")
        accept = value.get("accept")
        accept_field, accept_in = "", cast(list[Any], [])
        if accept not in (None, "") and ctx.known_keys(accept, ("field", "in"), f"{path}.accept"):
            accept_field = str(accept.get("field") or "")
            accept_in = accept.get("in") if accept.get("in") is not None else []
            if not isinstance(accept_in, list):
                ctx.error(f"{path}.accept.in", "must be a list of values")
                accept_in = []
            if not accept_field:
                ctx.error(f"{path}.accept.field", "is required")
        retries = ctx.as_int(value.get("retries"), f"{path}.retries")
        timeout = ctx.as_duration(value.get("timeout"), f"{path}.timeout")
        retry_after = ctx.as_duration(value.get("retry_after"), f"{path}.retry_after")
        out.update(
            delivery_method=method,
            delivery_url=url,
            delivery_format=ctx.as_choice(
                value.get("format"), f"{path}.format", DeliveryFormat.values, DeliveryFormat.JSON
            ),
            delivery_headers=self._str_map(ctx, value.get("headers"), f"{path}.headers"),
            delivery_mapping=self._str_map(ctx, value.get("mapping"), f"{path}.mapping"),
            delivery_secret=str(value.get("secret") or ""),
            delivery_accept_field=accept_field,
            delivery_accept_in=accept_in,
            delivery_reason_field=str(value.get("reason_field") or ""),
            delivery_email=email,
        )
        if retries is not None:
            out["delivery_retries"] = retries
        if timeout is not None:
            out["delivery_timeout"] = timeout
        if retry_after is not None:
            out["delivery_retry_after"] = retry_after
        return out

    def _delivery_export(self, c: Contract) -> dict[str, Any] | None:
        row: dict[str, Any] = {"method": c.delivery_method}
        for key, attr in (
            ("url", "delivery_url"),
            ("headers", "delivery_headers"),
            ("mapping", "delivery_mapping"),
            ("secret", "delivery_secret"),
            ("reason_field", "delivery_reason_field"),
            ("email", "delivery_email"),
        ):
            if getattr(c, attr):
                row[key] = getattr(c, attr)
        if c.delivery_format != DELIVERY_DEFAULTS["delivery_format"]:
            row["format"] = c.delivery_format
        if c.delivery_accept_field:
            row["accept"] = {"field": c.delivery_accept_field, "in": c.delivery_accept_in}
        if c.delivery_retries != DELIVERY_DEFAULTS["delivery_retries"]:
            row["retries"] = c.delivery_retries
        for key, attr in (("timeout", "delivery_timeout"), ("retry_after", "delivery_retry_after")):
            if getattr(c, attr) != DELIVERY_DEFAULTS[attr]:
                row[key] = format_duration(getattr(c, attr))
        return None if row == {"method": DeliveryMethod.PORTAL} else row

    def _caps(self, ctx: Ctx, value: Any, path: str, *, money: bool) -> dict[str, Any]:
        prefix = "budget" if money else "cap"
        out: dict[str, Any] = {f"{prefix}_{p}": None for p in PERIODS}
        if value in (None, "") or not ctx.known_keys(value, PERIODS, path):
            return out
        for period in PERIODS:
            p = f"{path}.{period}"
            out[f"{prefix}_{period}"] = (
                _non_negative(ctx, value.get(period), p)
                if money
                else ctx.as_int(value.get(period), p)
            )
        return out

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        seen: set[str] = set()

        def one(item: dict[str, Any], path: str) -> None:
            name = ctx.require(item, "name", path)
            company = ctx.ref(
                Company, "name", ctx.require(item, "company", path), f"{path}.company", "company"
            )
            campaign = ctx.ref(
                Campaign,
                "slug",
                ctx.require(item, "campaign", path),
                f"{path}.campaign",
                "campaign",
            )
            price = _non_negative(ctx, ctx.require(item, "price", path), f"{path}.price")
            qs = ctx.as_float(item.get("quality_score"), f"{path}.quality_score", -1e9, 1e9)
            share = ctx.as_int(item.get("max_share_count"), f"{path}.max_share_count", minimum=1)
            radius = ctx.as_float(item.get("radius_km"), f"{path}.radius_km", 0, 40_100)
            starts = ctx.as_date(item.get("starts"), f"{path}.starts")
            ends = ctx.as_date(item.get("ends"), f"{path}.ends")
            if starts and ends and ends < starts:
                ctx.error(f"{path}.ends", "must not be before starts")
            tz = str(item.get("timezone") or settings.TIME_ZONE)
            ctx.known_timezone(tz, f"{path}.timezone")
            min_score = ctx.as_float(
                item.get("min_lead_score"), f"{path}.min_lead_score", -1e12, 1e12
            )
            values: dict[str, Any] = {
                "company": company,
                "campaign": campaign,
                "price": price,
                "quality_score": qs if qs is not None else 0.0,
                "trial": ctx.as_bool(item.get("trial"), f"{path}.trial", False),
                "active": ctx.as_bool(item.get("active"), f"{path}.active", True),
                "paused": ctx.as_bool(item.get("paused"), f"{path}.paused", False),
                "starts": starts,
                "ends": ends,
                "radius_km": radius,
                "max_share_count": share if share is not None else 1,
                "timezone": tz,
                "max_lead_age": ctx.as_duration(item.get("max_lead_age"), f"{path}.max_lead_age"),
                "min_lead_score": min_score,
                "return_window": _return_window(ctx, item.get("return_window"), path),
                **self._caps(ctx, item.get("caps"), f"{path}.caps", money=False),
                **self._caps(ctx, item.get("budget"), f"{path}.budget", money=True),
            }
            # `delivery_hours`; a list under `delivery` = hours (older files, decision D1)
            legacy = item.get("delivery")
            if isinstance(legacy, list):
                if item.get("delivery_hours") is not None:
                    ctx.error(f"{path}.delivery", "hours are given twice (use delivery_hours)")
                delivery = ctx.weekly_intervals(legacy, f"{path}.delivery")
                values.update(DELIVERY_DEFAULTS)
            else:
                delivery = ctx.weekly_intervals(
                    item.get("delivery_hours"), f"{path}.delivery_hours"
                )
                values.update(self._delivery(ctx, legacy, f"{path}.delivery"))
            if name and str(name) in seen:
                ctx.error(f"{path}.name", f"{name!r} is listed twice")
                return
            seen.add(str(name))
            if not name or delivery is None or ctx.errors:
                return
            group_name = str(item.get("group") or "")
            values["group"] = (
                ContractGroup.objects.get_or_create(name=group_name)[0] if group_name else None
            )
            contract, created, changed = save_by_key(Contract, {"name": name}, values)
            current = (
                set()
                if created
                else {(d.weekday, d.start, d.end) for d in contract.delivery_intervals.all()}
            )
            if current != delivery:
                DeliveryInterval.objects.filter(contract=contract).delete()
                DeliveryInterval.objects.bulk_create(
                    [
                        DeliveryInterval(contract=contract, weekday=d, start=s, end=e)
                        for d, s, e in sorted(delivery)
                    ]
                )
                if not created:
                    changed.append("delivery_hours")
            ctx.report.count_saved(self.key, str(name), created=created, changed=changed)

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for c in (
            Contract.objects.select_related("company", "campaign", "group")
            .prefetch_related("delivery_intervals")
            .order_by("name")
        ):
            row: dict[str, Any] = {
                "name": c.name,
                "company": c.company.name,
                "campaign": c.campaign.slug,
                "price": plain(c.price),
                "quality_score": _plain_float(c.quality_score),
                "trial": c.trial,
                "active": c.active,
                "max_share_count": c.max_share_count,
                "timezone": c.timezone,
            }
            if c.paused:
                row["paused"] = True
            if c.starts:
                row["starts"] = plain(c.starts)
            if c.ends:
                row["ends"] = plain(c.ends)
            if c.radius_km is not None:
                row["radius_km"] = _plain_float(c.radius_km)
            caps = {
                p: getattr(c, f"cap_{p}") for p in PERIODS if getattr(c, f"cap_{p}") is not None
            }
            if caps:
                row["caps"] = caps
            budget = {
                p: plain(getattr(c, f"budget_{p}"))
                for p in PERIODS
                if getattr(c, f"budget_{p}") is not None
            }
            if budget:
                row["budget"] = budget
            if c.max_lead_age is not None:
                row["max_lead_age"] = format_duration(c.max_lead_age)
            if c.min_lead_score is not None:
                row["min_lead_score"] = _plain_float(c.min_lead_score)
            if c.return_window != default_return_window():
                row["return_window"] = format_duration(c.return_window)
            if c.group is not None:
                row["group"] = c.group.name
            intervals = sorted(
                c.delivery_intervals.all(), key=lambda d: (d.weekday, d.start, d.end)
            )
            if intervals:
                row["delivery_hours"] = [
                    {
                        "days": [DAYS[d.weekday]],
                        "start": format_time(d.start),
                        "end": format_time(d.end),
                    }
                    for d in intervals
                ]
            delivery = self._delivery_export(c)
            if delivery is not None:
                row["delivery"] = delivery
            rows.append(row)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for c in Contract.objects.filter(active=True).exclude(name__in=named):
            ctx.switch_off(self.key, c, "active", c.name)


# --- workflows ----------------------------------------------------------------------------


@register
class WorkflowsSection(Section):
    key = "workflows"
    natural_key = "campaign"
    fields = (
        "campaign",
        "mode",
        "window",
        "max_multiplication",
        "min_contracts",
        "min_turnover",
        "batch_optimal",
        "selection_rules",
    )

    def _rules(self, ctx: Ctx, value: Any, path: str) -> list[dict[str, Any]] | None:
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            ctx.error(path, "must be a list of {mode, take, min_turnover}")
            return None
        out: list[dict[str, Any]] = []
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if not ctx.known_keys(item, ("mode", "take", "min_turnover"), p):
                continue
            mode = ctx.as_choice(
                ctx.require(item, "mode", p), f"{p}.mode", SelectionMode.values, SelectionMode.QS
            )
            take = ctx.as_int(ctx.require(item, "take", p), f"{p}.take", minimum=1)
            out.append(
                {
                    "position": i + 1,
                    "mode": mode,
                    "take": take or 1,
                    "min_turnover": _non_negative(
                        ctx, item.get("min_turnover"), f"{p}.min_turnover"
                    ),
                }
            )
        return out

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        seen: set[str] = set()

        def one(item: dict[str, Any], path: str) -> None:
            slug = ctx.require(item, "campaign", path)
            campaign = ctx.ref(Campaign, "slug", slug, f"{path}.campaign", "campaign")
            mode = ctx.as_choice(
                item.get("mode"), f"{path}.mode", WorkflowMode.values, WorkflowMode.ON_ARRIVAL
            )
            window = item.get("window")
            duration = every = None
            if window not in (None, "") and ctx.known_keys(
                window, ("duration", "every"), f"{path}.window"
            ):
                duration = ctx.as_duration(window.get("duration"), f"{path}.window.duration")
                every = ctx.as_duration(window.get("every"), f"{path}.window.every")
                for key, value in (("duration", duration), ("every", every)):
                    if value is not None and value.total_seconds() <= 0:
                        ctx.error(f"{path}.window.{key}", "must be positive")
            rules = self._rules(ctx, item.get("selection_rules"), f"{path}.selection_rules")
            values: dict[str, Any] = {
                "mode": mode,
                "window_duration": duration,
                "recheck_every": every,
                "max_multiplication": ctx.as_int(
                    item.get("max_multiplication"), f"{path}.max_multiplication", minimum=1
                ),
                "min_contracts": ctx.as_int(item.get("min_contracts"), f"{path}.min_contracts")
                or 0,
                "min_turnover": _non_negative(
                    ctx, item.get("min_turnover"), f"{path}.min_turnover"
                ),
                "batch_optimal": ctx.as_bool(
                    item.get("batch_optimal"), f"{path}.batch_optimal", False
                ),
            }
            if slug and str(slug) in seen:
                ctx.error(f"{path}.campaign", f"{slug!r} has two workflows")
                return
            seen.add(str(slug))
            if campaign is None or rules is None or ctx.errors:
                return
            workflow, created, changed = save_by_key(Workflow, {"campaign": campaign}, values)
            current = {r.position: r for r in workflow.selection_rules.all()}
            rules_changed = False
            for rule in rules:
                existing = current.pop(rule["position"], None)
                if existing is None:
                    SelectionRule.objects.create(workflow=workflow, **rule)
                    rules_changed = True
                elif save_fields(existing, rule):
                    rules_changed = True
            if current:
                SelectionRule.objects.filter(pk__in=[r.pk for r in current.values()]).delete()
                rules_changed = True
            if rules_changed and not created:
                changed.append("selection_rules")
            ctx.report.count_saved(self.key, str(slug), created=created, changed=changed)

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for w in (
            Workflow.objects.select_related("campaign")
            .prefetch_related("selection_rules")
            .order_by("campaign__slug")
        ):
            row: dict[str, Any] = {"campaign": w.campaign.slug, "mode": w.mode}
            window = {
                k: format_duration(v)
                for k, v in (("duration", w.window_duration), ("every", w.recheck_every))
                if v is not None
            }
            if window:
                row["window"] = window
            row["max_multiplication"] = w.max_multiplication
            row["min_contracts"] = w.min_contracts
            if w.min_turnover is not None:
                row["min_turnover"] = plain(w.min_turnover)
            row["batch_optimal"] = w.batch_optimal
            row["selection_rules"] = [
                {
                    "mode": r.mode,
                    "take": r.take,
                    **(
                        {"min_turnover": plain(r.min_turnover)}
                        if r.min_turnover is not None
                        else {}
                    ),
                }
                for r in sorted(w.selection_rules.all(), key=lambda r: r.position)
            ]
            rows.append(row)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for w in Workflow.objects.select_related("campaign").exclude(campaign__slug__in=named):
            slug = w.campaign.slug
            w.delete()
            ctx.report.count(self.key, "removed", slug)
