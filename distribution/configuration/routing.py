"""Sections owned by agent routing: schedules, pools, rules, automations (DESIGN §7).

Nested lists (a schedule's intervals and holidays, a pool's members, a rule's sources and
tiers) describe the whole set: applying a pool replaces its members with those listed.
Top-level items are only upserted; `--prune` disables or removes the unnamed ones.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from accounts.models import User
from distribution.engine.types import METRICS, TIER_OPS, Filter
from distribution.models import (
    AfterHours,
    Automation,
    Holiday,
    InitialStatus,
    Organisation,
    PerformanceTier,
    Pool,
    PoolMember,
    Rule,
    Schedule,
    ScheduleInterval,
    Strategy,
)
from distribution.models.routing import (
    ASSIGNING_STRATEGIES,
    INITIAL_ACTIVITIES,
    METRICS_WINDOW,
    initial_pair_errors,
)
from leads.models import Activity, Campaign, Source

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

CAP_PERIODS = ("hour", "day", "week", "month")


# --- shared helpers -----------------------------------------------------------------------


def parse_filters(ctx: Ctx, value: Any, path: str) -> list[dict[str, Any]]:
    """Validate a filter list; the canonical stored form `[{field, op, value}]`."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        ctx.error(path, "must be a list of {field, op, value}")
        return []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        p = f"{path}[{i}]"
        if not ctx.known_keys(item, ("field", "op", "value"), p):
            continue
        field = ctx.require(item, "field", p)
        op = ctx.require(item, "op", p)
        if not field or not op:
            continue
        try:
            Filter(str(field), str(op), item.get("value"))
        except ValueError as exc:
            ctx.error(p, str(exc))
            continue
        out.append({"field": str(field), "op": str(op), "value": item.get("value")})
    return out


def parse_caps(ctx: Ctx, value: Any, path: str) -> dict[str, int | None]:
    """`{hour, day, week, month}` → the `cap_*` model fields (missing = no cap)."""
    caps: dict[str, int | None] = {f"cap_{p}": None for p in CAP_PERIODS}
    if value in (None, ""):
        return caps
    if not ctx.known_keys(value, CAP_PERIODS, path):
        return caps
    for period in CAP_PERIODS:
        caps[f"cap_{period}"] = ctx.as_int(value.get(period), f"{path}.{period}")
    return caps


def export_caps(obj: Any) -> dict[str, int]:
    return {
        p: getattr(obj, f"cap_{p}") for p in CAP_PERIODS if getattr(obj, f"cap_{p}") is not None
    }


def _agent(ctx: Ctx, email: Any, path: str) -> User | None:
    if email in (None, ""):
        return None
    user = User.objects.filter(email__iexact=str(email).strip()).first()
    if user is None:
        ctx.error(path, f"no agent {email!r}")
    return user


# --- schedules ----------------------------------------------------------------------------


@register
class SchedulesSection(Section):
    key = "schedules"
    natural_key = "name"
    fields = ("name", "timezone", "intervals", "holidays", "holiday_country")

    def _holidays(self, ctx: Ctx, value: Any, path: str) -> dict[Any, str] | None:
        if value in (None, ""):
            return {}
        if not isinstance(value, list):
            ctx.error(path, "must be a list of {date, name}")
            return None
        out: dict[Any, str] = {}
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if not ctx.known_keys(item, ("date", "name"), p):
                continue
            day = ctx.as_date(ctx.require(item, "date", p), f"{p}.date")
            if day is not None:
                out[day] = str(item.get("name") or "")
        return out

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        def one(item: dict[str, Any], path: str) -> None:
            name = ctx.require(item, "name", path)
            tz = str(item.get("timezone") or "UTC")
            ctx.known_timezone(tz, f"{path}.timezone")
            country = str(item.get("holiday_country") or "").upper()
            if country:
                from distribution.loaders.holidays import supported_countries

                if country not in supported_countries():
                    ctx.error(
                        f"{path}.holiday_country",
                        f"{country!r} is not a country the holidays package knows",
                    )
            intervals = ctx.weekly_intervals(item.get("intervals"), f"{path}.intervals")
            days_off = self._holidays(ctx, item.get("holidays"), f"{path}.holidays")
            if not name or intervals is None or days_off is None or ctx.errors:
                return
            values = {"timezone": tz, "holiday_country": country}
            schedule, created, changed = save_by_key(Schedule, {"name": name}, values)
            current = {(iv.weekday, iv.start, iv.end) for iv in schedule.intervals.all()}
            if current != intervals:
                schedule.intervals.all().delete()
                ScheduleInterval.objects.bulk_create(
                    ScheduleInterval(schedule=schedule, weekday=w, start=s, end=e)
                    for w, s, e in sorted(intervals)
                )
                changed.append("intervals")
            manual = {
                h.date: h.name for h in schedule.holidays.filter(origin=Holiday.Origin.MANUAL)
            }
            if manual != days_off:
                schedule.holidays.filter(origin=Holiday.Origin.MANUAL).delete()
                # an entered holiday replaces a country one on the same day
                schedule.holidays.filter(date__in=list(days_off)).delete()
                Holiday.objects.bulk_create(
                    Holiday(schedule=schedule, date=d, name=n) for d, n in sorted(days_off.items())
                )
                changed.append("holidays")
            ctx.report.count_saved(self.key, str(name), created=created, changed=changed)

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for s in Schedule.objects.prefetch_related("intervals", "holidays").order_by("name"):
            groups: dict[tuple[Any, Any], list[int]] = {}
            for iv in s.intervals.all():
                groups.setdefault((iv.start, iv.end), []).append(iv.weekday)
            intervals = sorted(
                (
                    {
                        "days": [DAYS[d] for d in sorted(set(days))],
                        "start": format_time(start),
                        "end": "24:00" if end.hour == 0 and end.minute == 0 else format_time(end),
                    }
                    for (start, end), days in groups.items()
                ),
                key=lambda i: (DAYS.index(i["days"][0]), i["start"], i["end"]),
            )
            rows.append(
                {
                    "name": s.name,
                    "timezone": s.timezone,
                    "intervals": intervals,
                    "holidays": [
                        {"date": h.date.isoformat(), "name": h.name}
                        for h in s.holidays.all()
                        if h.origin == Holiday.Origin.MANUAL
                    ],
                    "holiday_country": s.holiday_country or None,
                }
            )
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for s in Schedule.objects.exclude(name__in=named).filter(
            rules__isnull=True, agents__isnull=True
        ):
            s.delete()
            ctx.report.count(self.key, "removed", s.name)


# --- organisation -------------------------------------------------------------------------


@register
class OrganisationSection(Section):
    """`organisation: {name, business_hours: <schedule>, after_hours, ring_all_after_hours}`:
    the one set of defaults rules without their own schedule / after-hours policy inherit."""

    key = "organisation"
    natural_key = "name"
    fields = ("name", "business_hours", "after_hours", "ring_all_after_hours")
    single = True

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        def one(item: dict[str, Any], path: str) -> None:
            values = {
                "name": str(item.get("name") or "Organisation"),
                "business_hours": ctx.ref(
                    Schedule,
                    "name",
                    item.get("business_hours"),
                    f"{path}.business_hours",
                    "schedule",
                ),
                "after_hours": ctx.as_choice(
                    item.get("after_hours"),
                    f"{path}.after_hours",
                    AfterHours.values,
                    AfterHours.HOLD,
                ),
                "ring_all_after_hours": ctx.as_choice(
                    item.get("ring_all_after_hours"),
                    f"{path}.ring_all_after_hours",
                    AfterHours.values,
                    AfterHours.UNASSIGNED,
                ),
            }
            if ctx.errors:
                return
            org, created, changed = save_by_key(Organisation, {"pk": 1}, values)
            ctx.report.count_saved(self.key, org.name, created=created, changed=changed)

        each_item(ctx, "organisation", items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        org = Organisation.objects.select_related("business_hours").filter(pk=1).first()
        if org is None:
            return []
        return [
            {
                "name": org.name,
                "business_hours": org.business_hours.name if org.business_hours else None,
                "after_hours": org.after_hours,
                "ring_all_after_hours": org.ring_all_after_hours,
            }
        ]


# --- pools --------------------------------------------------------------------------------


def _member_row(m: PoolMember) -> tuple[Any, ...]:
    return (
        m.agent_id,
        Decimal(m.weight),
        m.active,
        m.cap_hour,
        m.cap_day,
        m.cap_week,
        m.cap_month,
        m.filters,
    )


@register
class PoolsSection(Section):
    key = "pools"
    natural_key = "name"
    fields = ("name", "description", "caps", "members")
    member_fields = ("agent", "weight", "active", "caps", "filters")

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        def one(item: dict[str, Any], path: str) -> None:
            name = ctx.require(item, "name", path)
            members = item.get("members") or []
            if not isinstance(members, list):
                ctx.error(f"{path}.members", "must be a list")
                return
            wanted: list[dict[str, Any]] = []
            seen: set[int] = set()
            for i, m in enumerate(members):
                p = f"{path}.members[{i}]"
                if isinstance(m, str):
                    m = {"agent": m}
                if not ctx.known_keys(m, self.member_fields, p):
                    continue
                user = _agent(ctx, ctx.require(m, "agent", p), f"{p}.agent")
                weight = ctx.as_decimal(m.get("weight"), f"{p}.weight")
                if weight is not None and weight <= 0:
                    ctx.error(f"{p}.weight", "must be positive")
                if user is None:
                    continue
                if user.pk in seen:
                    ctx.error(f"{p}.agent", f"{user.email} is listed twice")
                    continue
                seen.add(user.pk)
                wanted.append(
                    {
                        "agent_id": user.pk,
                        "weight": weight or Decimal(1),
                        "active": ctx.as_bool(m.get("active"), f"{p}.active", True),
                        **parse_caps(ctx, m.get("caps"), f"{p}.caps"),
                        "filters": parse_filters(ctx, m.get("filters"), f"{p}.filters"),
                        "position": i,
                    }
                )
            # the whole pool's caps, beside each member's (seed 002's "Max Leads … to a group")
            pool_caps = parse_caps(ctx, item.get("caps"), f"{path}.caps")
            if not name or ctx.errors:
                return
            values = {"description": str(item.get("description") or ""), **pool_caps}
            pool, created, changed = save_by_key(Pool, {"name": name}, values)
            current = list(pool.members.order_by("position", "id"))
            same = [(_member_row(m), m.position) for m in current] == [
                (
                    (
                        w["agent_id"],
                        Decimal(w["weight"]),
                        w["active"],
                        w["cap_hour"],
                        w["cap_day"],
                        w["cap_week"],
                        w["cap_month"],
                        w["filters"],
                    ),
                    w["position"],
                )
                for w in wanted
            ]
            if not same:
                by_agent = {m.agent_id: m for m in current}
                for w in wanted:
                    member = by_agent.pop(w["agent_id"], None) or PoolMember(pool=pool)
                    save_fields(member, w)
                # removing a member keeps its offers and assignments (SET_NULL / by agent)
                PoolMember.objects.filter(pk__in=[m.pk for m in by_agent.values()]).delete()
                changed.append("members")
            ctx.report.count_saved(self.key, str(name), created=created, changed=changed)

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        pools = Pool.objects.prefetch_related("members__agent").order_by("name")
        for pool in pools:
            members = []
            for m in sorted(pool.members.all(), key=lambda m: (m.position, m.id)):
                row: dict[str, Any] = {"agent": m.agent.email, "weight": plain(m.weight)}
                if not m.active:
                    row["active"] = False
                caps = export_caps(m)
                if caps:
                    row["caps"] = caps
                if m.filters:
                    row["filters"] = m.filters
                members.append(row)
            item: dict[str, Any] = {"name": pool.name}
            if pool.description:
                item["description"] = pool.description
            if export_caps(pool):
                item["caps"] = export_caps(pool)
            item["members"] = members
            rows.append(item)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for pool in Pool.objects.exclude(name__in=named).filter(rules__isnull=True):
            pool.delete()
            ctx.report.count(self.key, "removed", pool.name)


# --- rules --------------------------------------------------------------------------------


@register
class RulesSection(Section):
    key = "rules"
    natural_key = "name"
    fields = (
        "name",
        "priority",
        "enabled",
        "sources",
        "campaign",
        "filters",
        "strategy",
        "pool",
        "claim_timeout",
        "max_rounds",
        "batch_size",
        "schedule",
        "after_hours",
        "default_agent",
        "caps",
        "pull_allotment",
        "initial_status",
        "initial_activity",
        "sticky_owner",
        "tcpa",
        "contact_sla",
        "catch_up",
        "require_agent_hours",
        "tiers",
        "metrics_window",
    )

    def _tiers(self, ctx: Ctx, value: Any, path: str) -> list[tuple[str, str, float, float]]:
        if value in (None, ""):
            return []
        if not isinstance(value, list):
            ctx.error(path, "must be a list of {metric, op, threshold, multiplier}")
            return []
        out = []
        for i, t in enumerate(value):
            p = f"{path}[{i}]"
            if not ctx.known_keys(t, ("metric", "op", "threshold", "multiplier"), p):
                continue
            metric = ctx.as_choice(ctx.require(t, "metric", p), f"{p}.metric", sorted(METRICS), "")
            op = ctx.as_choice(ctx.require(t, "op", p), f"{p}.op", sorted(TIER_OPS), "")
            threshold = ctx.as_float(ctx.require(t, "threshold", p), f"{p}.threshold", -1e12, 1e12)
            multiplier = ctx.as_float(ctx.require(t, "multiplier", p), f"{p}.multiplier", 0, 1e6)
            if metric and op and threshold is not None and multiplier is not None:
                out.append((metric, op, threshold, multiplier))
        return out

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        def one(item: dict[str, Any], path: str) -> None:
            name = ctx.require(item, "name", path)
            priority = ctx.as_int(item.get("priority"), f"{path}.priority", minimum=None)
            sources_in = item.get("sources") or []
            if isinstance(sources_in, str):
                sources_in = [sources_in]
            if not isinstance(sources_in, list):
                ctx.error(f"{path}.sources", "must be a list of source slugs")
                sources_in = []
            sources = [
                ctx.ref(Source, "slug", s, f"{path}.sources[{i}]", "source")
                for i, s in enumerate(sources_in)
            ]
            activity = str(item.get("initial_activity") or "")
            if activity and activity not in Activity.Kind.values:
                ctx.error(
                    f"{path}.initial_activity",
                    f"{activity!r} is not one of {', '.join(Activity.Kind.values)}",
                )
            values: dict[str, Any] = {
                "priority": 100 if priority is None else priority,
                "enabled": ctx.as_bool(item.get("enabled"), f"{path}.enabled", False),
                "campaign": ctx.ref(
                    Campaign, "slug", item.get("campaign"), f"{path}.campaign", "campaign"
                ),
                "filters": parse_filters(ctx, item.get("filters"), f"{path}.filters"),
                "strategy": ctx.as_choice(
                    item.get("strategy"), f"{path}.strategy", Strategy.values, Strategy.ROUND_ROBIN
                ),
                "pool": ctx.ref(Pool, "name", item.get("pool"), f"{path}.pool", "pool"),
                "claim_timeout": ctx.as_duration(
                    item.get("claim_timeout"), f"{path}.claim_timeout"
                ),
                "max_rounds": ctx.as_int(item.get("max_rounds"), f"{path}.max_rounds", minimum=1),
                "batch_size": ctx.as_int(item.get("batch_size"), f"{path}.batch_size", minimum=1),
                "schedule": ctx.ref(
                    Schedule, "name", item.get("schedule"), f"{path}.schedule", "schedule"
                ),
                # missing = the organisation's policy (its ring-all one for broadcast rules)
                "after_hours": ctx.as_choice(
                    item.get("after_hours"), f"{path}.after_hours", AfterHours.values, ""
                ),
                "default_agent": _agent(ctx, item.get("default_agent"), f"{path}.default_agent"),
                **parse_caps(ctx, item.get("caps"), f"{path}.caps"),
                "pull_allotment": ctx.as_int(item.get("pull_allotment"), f"{path}.pull_allotment"),
                "initial_status": ctx.as_choice(
                    item.get("initial_status"),
                    f"{path}.initial_status",
                    InitialStatus.values,
                    InitialStatus.ASSIGNED,
                ),
                "initial_activity": activity,
                "sticky_owner": ctx.as_bool(
                    item.get("sticky_owner"), f"{path}.sticky_owner", False
                ),
                "tcpa": ctx.as_bool(item.get("tcpa"), f"{path}.tcpa", False),
                "contact_sla": ctx.as_duration(item.get("contact_sla"), f"{path}.contact_sla"),
                "catch_up": ctx.as_bool(item.get("catch_up"), f"{path}.catch_up", False),
                "require_agent_hours": ctx.as_bool(
                    item.get("require_agent_hours"), f"{path}.require_agent_hours", True
                ),
                "metrics_window": ctx.as_duration(
                    item.get("metrics_window"), f"{path}.metrics_window"
                )
                or METRICS_WINDOW,
            }
            for key in ("claim_timeout", "contact_sla", "metrics_window"):
                if values[key] is not None and values[key].total_seconds() <= 0:
                    ctx.error(f"{path}.{key}", "must be positive")
            if (
                not activity
                and "initial_activity" not in item
                and values["strategy"] in ASSIGNING_STRATEGIES
                and values["initial_status"] in INITIAL_ACTIVITIES
            ):
                # a file that names no activity (older files, the §7 contract's own): the
                # status's usual one — an explicit one must follow the status (decision H5)
                activity = values["initial_activity"] = INITIAL_ACTIVITIES[
                    values["initial_status"]
                ][0]
            if not activity or activity in Activity.Kind.values:
                # an assigning strategy needs both; the activity follows the status
                pair = initial_pair_errors(
                    values["strategy"] or "", values["initial_status"], activity
                )
                for key, message in pair.items():
                    ctx.error(f"{path}.{key}", message)
            tiers = self._tiers(ctx, item.get("tiers"), f"{path}.tiers")
            if not name or ctx.errors:
                return
            rule, created, changed = save_by_key(Rule, {"name": name}, values)
            wanted_sources = {s.pk for s in sources if s is not None}
            if {s.pk for s in rule.sources.all()} != wanted_sources:
                rule.sources.set(wanted_sources)
                changed.append("sources")
            current_tiers = [
                (t.metric, t.op, t.threshold, t.multiplier)
                for t in rule.tiers.order_by("position", "id")
            ]
            if current_tiers != tiers:
                rule.tiers.all().delete()
                PerformanceTier.objects.bulk_create(
                    PerformanceTier(
                        rule=rule, metric=m, op=o, threshold=th, multiplier=mu, position=i
                    )
                    for i, (m, o, th, mu) in enumerate(tiers)
                )
                changed.append("tiers")
            if not ctx.report.dry_run:
                # enabling, or saving the filters of an enabled rule, distributes every
                # waiting lead the rule matches (seed 002), after the whole file committed
                from distribution.services.rules import rule_saved

                rule_saved(
                    rule_id=rule.pk,
                    was_enabled=not created and "enabled" not in changed,
                    changed=changed,
                )
            ctx.report.count_saved(self.key, str(name), created=created, changed=changed)

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        rules = (
            Rule.objects.select_related("campaign", "pool", "schedule", "default_agent")
            .prefetch_related("sources", "tiers")
            .order_by("name")
        )
        for r in rules:
            row: dict[str, Any] = {
                "name": r.name,
                "priority": r.priority,
                "enabled": r.enabled,
                "sources": sorted(s.slug for s in r.sources.all()),
                "campaign": r.campaign.slug if r.campaign else None,
                "filters": r.filters or [],
                "strategy": r.strategy,
                "pool": r.pool.name if r.pool else None,
                "claim_timeout": format_duration(r.claim_timeout),
                "max_rounds": r.max_rounds,
                "batch_size": r.batch_size,
                "schedule": r.schedule.name if r.schedule else None,
                "after_hours": r.after_hours or None,
                "default_agent": r.default_agent.email if r.default_agent else None,
                "caps": export_caps(r),
                "pull_allotment": r.pull_allotment,
                "initial_status": r.initial_status,
                "initial_activity": r.initial_activity or None,
                "sticky_owner": r.sticky_owner,
                "tcpa": r.tcpa,
                "contact_sla": format_duration(r.contact_sla),
                "catch_up": r.catch_up,
                "require_agent_hours": r.require_agent_hours,
                "metrics_window": format_duration(r.metrics_window),
                "tiers": [
                    {
                        "metric": t.metric,
                        "op": t.op,
                        "threshold": t.threshold,
                        "multiplier": t.multiplier,
                    }
                    for t in sorted(r.tiers.all(), key=lambda t: (t.position, t.id))
                ],
            }
            rows.append(row)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for rule in Rule.objects.exclude(name__in=named).filter(enabled=True):
            ctx.switch_off(self.key, rule, "enabled", rule.name)


# --- automations --------------------------------------------------------------------------


@register
class AutomationsSection(Section):
    key = "automations"
    natural_key = "name"
    fields = ("name", "trigger", "filters", "action", "target", "owner", "enabled", "priority")

    def apply(self, items: list[Any], ctx: Ctx) -> None:
        def one(item: dict[str, Any], path: str) -> None:
            name = ctx.require(item, "name", path)
            action = ctx.as_choice(
                ctx.require(item, "action", path), f"{path}.action", Automation.Action.values, ""
            )
            target = item.get("target")
            user = rule = None
            if action == Automation.Action.USER:
                user = _agent(ctx, ctx.require(item, "target", path), f"{path}.target")
            elif action in (Automation.Action.RULE, Automation.Action.HOPPER):
                if action == Automation.Action.RULE:
                    ctx.require(item, "target", path)
                rule = ctx.ref(Rule, "name", target, f"{path}.target", "rule")
                if (
                    action == Automation.Action.HOPPER
                    and rule is not None
                    and rule.strategy != Strategy.HOPPER
                ):
                    ctx.error(f"{path}.target", f"rule {rule.name!r} is not a hopper rule")
            elif target not in (None, ""):
                ctx.error(f"{path}.target", "assignment_rules takes no target")
            if item.get("owner") not in (None, ""):
                if action != Automation.Action.HOPPER:
                    ctx.error(f"{path}.owner", "only the hopper action takes an owner")
                else:
                    user = _agent(ctx, item.get("owner"), f"{path}.owner")
            priority = ctx.as_int(item.get("priority"), f"{path}.priority", minimum=None)
            values = {
                "trigger": ctx.as_choice(
                    item.get("trigger"),
                    f"{path}.trigger",
                    Automation.Trigger.values,
                    Automation.Trigger.CREATED,
                ),
                "filters": parse_filters(ctx, item.get("filters"), f"{path}.filters"),
                "action": action,
                "target_user": user,
                "target_rule": rule,
                "enabled": ctx.as_bool(item.get("enabled"), f"{path}.enabled", True),
                "priority": 100 if priority is None else priority,
            }
            if not name or ctx.errors:
                return
            ctx.upsert(self.key, Automation, {"name": name}, values, str(name))

        each_item(ctx, self.key, items, self.fields, one)

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for a in Automation.objects.select_related("target_user", "target_rule").order_by("name"):
            row: dict[str, Any] = {
                "name": a.name,
                "trigger": a.trigger,
                "filters": a.filters,
                "action": a.action,
                "enabled": a.enabled,
                "priority": a.priority,
            }
            if a.action == Automation.Action.USER:
                row["target"] = a.target_user.email if a.target_user else None
            elif a.action in (Automation.Action.RULE, Automation.Action.HOPPER):
                row["target"] = a.target_rule.name if a.target_rule else None
                if a.action == Automation.Action.HOPPER and a.target_user:
                    row["owner"] = a.target_user.email
            else:
                row["target"] = None
            rows.append(row)
        return rows

    def prune(self, named: set[Any], ctx: Ctx) -> None:
        for a in Automation.objects.exclude(name__in=named).filter(enabled=True):
            ctx.switch_off(self.key, a, "enabled", a.name)
