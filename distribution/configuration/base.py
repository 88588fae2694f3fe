"""The machinery of configuration as code: parse, validate with key paths, upsert, report."""

from __future__ import annotations

import abc
import datetime as dt
import importlib
import json
import re
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

import yaml
from django.db import models, transaction

# Modules that define sections, in the order their sections are applied.
SECTION_MODULES = [
    "distribution.configuration.core",
    "distribution.configuration.routing",
    "distribution.configuration.marketplace",
    "distribution.configuration.buyers",
]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
M = TypeVar("M", bound=models.Model)
_TIMEZONES = zoneinfo.available_timezones()


class ConfigError(Exception):
    """One or more errors in a configuration file; each message starts with its key path."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass
class Counts:
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass
class Report:
    """What applying a file did, per section."""

    counts: dict[str, Counts] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    dry_run: bool = False

    def count(self, section: str, what: str, label: str = "") -> None:
        c = self.counts.setdefault(section, Counts())
        setattr(c, what, getattr(c, what) + 1)
        if label and what != "unchanged":
            self.details.append(
                f"  {what} {section[:-1] if section.endswith('s') else section} {label}"
            )

    def count_saved(self, section: str, label: str, *, created: bool, changed: list[str]) -> None:
        """Count one upserted item: created, changed (naming what changed) or unchanged."""
        if created:
            self.count(section, "created", label)
        elif changed:
            self.count(section, "changed", f"{label} ({', '.join(changed)})")
        else:
            self.count(section, "unchanged")

    def recount(self, section: str, was: str, now: str, label: str) -> None:
        """Move one item counted WAS to NOW (a later step changed it after all)."""
        c = self.counts.setdefault(section, Counts())
        setattr(c, was, max(0, getattr(c, was) - 1))
        self.count(section, now, label)

    @property
    def total_changes(self) -> int:
        return sum(c.created + c.changed + c.removed for c in self.counts.values())

    def lines(self) -> list[str]:
        out = [
            f"{name}: {c.created} created, {c.changed} changed, {c.unchanged} unchanged"
            + (f", {c.removed} removed" if c.removed else "")
            for name, c in self.counts.items()
        ]
        total = self.total_changes
        out.append(
            ("Dry run: nothing written; " if self.dry_run else "")
            + (f"{total} change(s) in all." if total else "no changes.")
        )
        return out


class Ctx:
    """Validation and upsert helpers that know the key path of what they check."""

    def __init__(self, report: Report, prune: bool):
        self.report = report
        self.prune = prune
        self.errors: list[str] = []
        # Steps that need later sections applied first (an agent's schedule, by name).
        self.later: list[Callable[[], None]] = []

    # --- validation -------------------------------------------------------------------
    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def require(self, item: dict[str, Any], key: str, path: str) -> Any:
        value = item.get(key)
        if value in (None, ""):
            self.error(f"{path}.{key}", "is required")
        return value

    def known_keys(self, item: Any, allowed: Iterable[str], path: str) -> bool:
        if not isinstance(item, dict):
            self.error(path, "must be a mapping")
            return False
        for key in item:
            if key not in allowed:
                self.error(f"{path}.{key}", f"unknown key (allowed: {', '.join(allowed)})")
        return True

    def as_bool(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "off", "0"):
            return False
        self.error(path, f"{value!r} is not true or false")
        return default

    def as_int(self, value: Any, path: str, *, minimum: int | None = 0) -> int | None:
        if value in (None, ""):
            return None
        try:
            number = int(value)
            if isinstance(value, float) and value != number:
                raise ValueError
        except (TypeError, ValueError):
            self.error(path, f"{value!r} is not a whole number")
            return None
        if minimum is not None and number < minimum:
            self.error(path, f"must be at least {minimum}")
            return None
        return number

    def as_decimal(self, value: Any, path: str) -> Decimal | None:
        if value in (None, ""):
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.error(path, f"{value!r} is not a number")
            return None

    def as_float(self, value: Any, path: str, lo: float, hi: float) -> float | None:
        if value in (None, ""):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.error(path, f"{value!r} is not a number")
            return None
        if not lo <= number <= hi:
            self.error(path, f"must be between {lo} and {hi}")
            return None
        return number

    def as_duration(self, value: Any, path: str) -> dt.timedelta | None:
        if value in (None, ""):
            return None
        parsed = parse_duration(value)
        if parsed is None:
            self.error(path, f'{value!r} is not a duration like "15m", "2h", "30s", "1d"')
        return parsed

    def as_date(self, value: Any, path: str) -> dt.date | None:
        if value in (None, ""):
            return None
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.error(path, f"{value!r} is not a date YYYY-MM-DD")
            return None

    def as_time(self, value: Any, path: str) -> dt.time | None:
        text = str(value or "")
        if text in ("24:00", "24:00:00"):
            return dt.time(0, 0)  # end of day; callers treat 00:00 as an end as midnight
        if isinstance(value, int):  # YAML 1.1 reads 09:00 unquoted as sexagesimal minutes
            return dt.time(value // 60 % 24, value % 60)
        try:
            return dt.time.fromisoformat(text)
        except ValueError:
            self.error(path, f"{value!r} is not a time HH:MM")
            return None

    def weekly_intervals(self, value: Any, path: str) -> set[tuple[int, Any, Any]] | None:
        """`[{days: [mon, …], start: "HH:MM", end: "HH:MM"}]` as (weekday, start, end) rows;
        None after an error. An end equal to the start is only allowed as "24:00"."""
        if value in (None, ""):
            return set()
        if not isinstance(value, list):
            self.error(path, "must be a list of {days, start, end}")
            return None
        out: set[tuple[int, Any, Any]] = set()
        for i, item in enumerate(value):
            p = f"{path}[{i}]"
            if not self.known_keys(item, ("days", "start", "end"), p):
                continue
            days = item.get("days")
            if isinstance(days, str):
                days = [days]
            if not isinstance(days, list) or not days:
                self.error(f"{p}.days", "must be a list of mon … sun")
                continue
            bad = [d for d in days if str(d).lower()[:3] not in DAYS]
            if bad:
                self.error(f"{p}.days", f"{bad[0]!r} is not one of {', '.join(DAYS)}")
                continue
            start = self.as_time(self.require(item, "start", p), f"{p}.start")
            end = self.as_time(self.require(item, "end", p), f"{p}.end")
            if start is None or end is None:
                continue
            if start == end and str(item.get("end")) not in ("24:00", "24:00:00"):
                self.error(f"{p}.end", "must differ from start")
                continue
            for d in days:
                out.add((DAYS.index(str(d).lower()[:3]), start, end))
        return out

    def known_timezone(self, tz: str, path: str) -> bool:
        """Whether TZ is a time zone zoneinfo knows; an error at PATH when not."""
        if tz in _TIMEZONES:
            return True
        self.error(path, f"{tz!r} is not a known time zone")
        return False

    def as_choice(self, value: Any, path: str, choices: Iterable[str], default: str) -> str:
        if value in (None, ""):
            return default
        options = list(choices)
        if value not in options:
            self.error(path, f"{value!r} is not one of {', '.join(options)}")
            return default
        return str(value)

    def ref(self, model: type[models.Model], key: str, value: Any, path: str, what: str) -> Any:
        """Look up a referenced object by natural key; an error names the path if absent."""
        if value in (None, ""):
            return None
        obj = model._default_manager.filter(**{key: value}).first()
        if obj is None:
            self.error(path, f"no {what} {value!r}")
        return obj

    # --- writing ----------------------------------------------------------------------
    def upsert(
        self,
        section: str,
        model: type[models.Model],
        lookup: dict[str, Any],
        values: dict[str, Any],
        label: str,
    ) -> models.Model:
        """Create or update one row by its natural key and count what happened."""
        obj, created, changed = save_by_key(model, lookup, values)
        self.report.count_saved(section, label, created=created, changed=changed)
        return obj

    def switch_off(self, section: str, obj: models.Model, flag: str, label: str) -> None:
        """Prune OBJ by turning its FLAG (`active` / `enabled`) off rather than deleting it:
        what refers to it stays valid. Counted as removed, "(deactivated)" / "(disabled)"."""
        setattr(obj, flag, False)
        touched = [f.name for f in obj._meta.concrete_fields if f.name == "updated_at"]
        obj.save(update_fields=[flag, *touched])
        note = "disabled" if flag == "enabled" else "deactivated"
        self.report.count(section, "removed", f"{label} ({note})")


def save_by_key(
    model: type[M], lookup: dict[str, Any], values: dict[str, Any]
) -> tuple[M, bool, list[str]]:
    """Create or update the row of MODEL found by LOOKUP (its natural key) with VALUES:
    the row, whether it is new, and the names that changed (none for a new row)."""
    obj = model._default_manager.filter(**lookup).first()
    created = obj is None
    obj = obj or model(**lookup)
    return obj, created, save_fields(obj, values)


def assign_changed(obj: models.Model, values: dict[str, Any]) -> list[str]:
    """Set on OBJ the VALUES that differ from what it holds; the names of those fields."""
    changed = [k for k, v in values.items() if _differs(getattr(obj, k), v)]
    for k in changed:
        setattr(obj, k, values[k])
    return changed


def save_fields(obj: models.Model, values: dict[str, Any]) -> list[str]:
    """Set VALUES on OBJ and save it when new or changed; the names that changed (none for
    a new row: every value is set, and its unset relations are never read)."""
    if obj.pk is None:
        for k, v in values.items():
            setattr(obj, k, v)
        obj.save()
        return []
    changed = assign_changed(obj, values)
    if changed:
        obj.save()
    return changed


def _differs(current: Any, new: Any) -> bool:
    if isinstance(current, models.Model) or isinstance(new, models.Model):
        return getattr(current, "pk", None) != getattr(new, "pk", None)
    if isinstance(current, Decimal) or isinstance(new, Decimal):
        try:
            return Decimal(str(current)) != Decimal(str(new))
        except InvalidOperation:
            return True
    return bool(current != new)


def parse_duration(value: Any) -> dt.timedelta | None:
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        return None
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_duration(value: dt.timedelta | None) -> str | None:
    if value is None:
        return None
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def format_time(value: dt.time) -> str:
    return value.strftime("%H:%M")


def plain(value: Any) -> Any:
    """A value as it is written in a file (Decimals as numbers, dates as strings)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


class Section(abc.ABC):
    """One top-level key of the configuration file."""

    key: ClassVar[str]
    natural_key: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]
    # a mapping, not a list, in the file (one item: the organisation's defaults)
    single: ClassVar[bool] = False

    @abc.abstractmethod
    def apply(self, items: list[Any], ctx: Ctx) -> None:
        """Validate and upsert ITEMS, recording errors and counts in CTX."""

    @abc.abstractmethod
    def export(self) -> list[dict[str, Any]]:
        """Every row as a file item, ordered by natural key."""

    def prune(self, named: set[Any], ctx: Ctx) -> None:  # noqa: B027 - optional hook
        """Remove (or deactivate) what the file does not name; only with --prune."""


SECTIONS: list[Section] = []


def register(cls: type[Section]) -> type[Section]:
    SECTIONS.append(cls())
    return cls


def _load_sections() -> list[Section]:
    for module in SECTION_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return SECTIONS


def load_text(text: str) -> dict[str, Any]:
    """Parse YAML or JSON (JSON is YAML); the top level must be a mapping."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"(file): not valid YAML or JSON: {exc}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(["(file): the top level must be a mapping of sections"])
    return data


def config_apply(data: dict[str, Any], *, dry_run: bool = False, prune: bool = False) -> Report:
    """Upsert every section of DATA by natural key in one transaction; all or nothing.

    1. Reject unknown top-level keys and non-list sections.
    2. Apply sections in dependency order (agents … rules, companies … workflows), each
       validating its items and collecting errors with their key paths.
    3. With --prune, let each named section remove what the file does not name.
    4. Any error, or a dry run, rolls the whole transaction back.
    """
    sections = _load_sections()
    known = {s.key: s for s in sections}
    report = Report(dry_run=dry_run)
    ctx = Ctx(report, prune)
    for key, value in data.items():
        if key not in known:
            ctx.error(key, f"unknown section (known: {', '.join(known)})")
        elif known[key].single:
            if value is not None and not isinstance(value, dict):
                ctx.error(key, "must be a mapping")
        elif not isinstance(value, list):
            ctx.error(key, "must be a list")
    if ctx.errors:
        raise ConfigError(ctx.errors)
    with transaction.atomic():
        for section in sections:
            if section.key not in data:
                continue
            items = data[section.key] or []
            if section.single:
                items = [items] if items else []
            section.apply(items, ctx)
            if prune and not ctx.errors:
                named = {i.get(section.natural_key) for i in items if isinstance(i, dict)}
                section.prune(named, ctx)
        for step in ctx.later:
            step()
        if ctx.errors:
            transaction.set_rollback(True)
            raise ConfigError(ctx.errors)
        if dry_run:
            transaction.set_rollback(True)
    return report


def config_export(*, fmt: str = "yaml", only: Iterable[str] | None = None) -> str:
    """The current setup in the format `apply_config` reads, deterministically ordered."""
    wanted = set(only) if only else None
    data: dict[str, Any] = {}
    for section in _load_sections():
        if wanted is None or section.key in wanted:
            rows = section.export()
            if section.single:  # a mapping; nothing set yet: left out
                if rows:
                    data[section.key] = rows[0]
                continue
            data[section.key] = rows
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def each_item(
    ctx: Ctx,
    section: str,
    items: list[Any],
    allowed: Iterable[str],
    body: Callable[[dict[str, Any], str], None],
) -> None:
    """Run BODY on every mapping item with its key path, skipping malformed ones."""
    allowed = tuple(allowed)
    for i, item in enumerate(items):
        path = f"{section}[{i}]"
        if ctx.known_keys(item, allowed, path):
            body(item, path)
