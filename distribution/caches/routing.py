"""The routing configuration cached per process behind its fingerprint, and the rule book an
operation takes from it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings

from accounts.models import User
from distribution.db.fingerprint import config_fingerprint
from distribution.engine.routing import rule_order
from distribution.engine.types import RuleSnapshot, ScheduleSnapshot
from distribution.loaders.routing import (
    agent_snapshot,
    extra_fields_of,
    filters_of,
    organisation_load,
    rule_snapshot,
    rules_queryset,
    schedule_snapshot,
    schedules_fill,
)
from distribution.models import Automation, Rule


@dataclass(frozen=True)
class RoutingConfig:
    """The rules, automations and schedules as loaded for one fingerprint; shared by every
    operation of the process until the fingerprint changes, so never mutated."""

    key: tuple[str, int, str]  # fingerprint, year (country holidays), site time zone
    rules: tuple[Rule, ...]
    snapshots: tuple[RuleSnapshot, ...]  # default agents left out: they are read fresh
    automations: tuple[Automation, ...]  # enabled `created` automations, in order
    # rules' schedules when built; agents' added as pools are loaded (schedules_fill), which
    # is safe because they are read after the fingerprint: a change in between changes it
    schedules: dict[int, ScheduleSnapshot]
    # the filter fields beside the lead row (owner, action_count) that rules or automations
    # name: a batch reads them for its leads only when this is not empty
    extra_fields: frozenset[str] = frozenset()

    def snapshot(self, rule_id: int) -> RuleSnapshot | None:
        """The rule's snapshot, without its default agent (checks of members only)."""
        return next((r for r in self.snapshots if r.id == rule_id), None)


_config_lock = threading.Lock()
_config: RoutingConfig | None = None


def _config_build(now: datetime, key: tuple[str, int, str]) -> RoutingConfig:
    rules = tuple(rules_queryset())
    today = now.date()
    schedules = {
        r.schedule.pk: schedule_snapshot(r.schedule, today) for r in rules if r.schedule is not None
    }
    automations = tuple(
        Automation.objects.filter(enabled=True, trigger=Automation.Trigger.CREATED).order_by(
            "priority", "name"
        )
    )
    # rules without a schedule or after-hours policy of their own inherit the organisation's
    organisation = organisation_load(schedules, now)
    snapshots = tuple(
        rule_snapshot(r, now, schedules=schedules, organisation=organisation) for r in rules
    )
    return RoutingConfig(
        key=key,
        rules=rules,
        snapshots=snapshots,
        automations=automations,
        schedules=schedules,
        extra_fields=extra_fields_of(
            *(s.filters for s in snapshots), *(filters_of(a.filters) for a in automations)
        ),
    )


def routing_config(now: datetime) -> RoutingConfig:
    """The routing configuration: the cached one while the fingerprint is unchanged, else
    loaded again (~8 queries). 1 query when cached."""
    global _config
    key = (config_fingerprint(), now.year, settings.TIME_ZONE)
    cached = _config
    if cached is not None and cached.key == key:
        return cached
    config = _config_build(now, key)
    with _config_lock:
        _config = config
    return config


@dataclass
class RuleBook:
    """Every rule as engine snapshots plus the model rows, for one operation: the cached
    configuration with the users it names (default agents, automation targets) read fresh."""

    snapshots: list[RuleSnapshot]
    models: dict[int, Rule]
    automations: list[Automation] = field(default_factory=list)
    schedules: dict[int, ScheduleSnapshot] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)  # default agents, automation targets
    extra_fields: frozenset[str] = frozenset()  # RoutingConfig.extra_fields
    _index: dict[int, RuleSnapshot] = field(default_factory=dict, repr=False)
    _indexed: list[RuleSnapshot] | None = field(default=None, repr=False)
    _ordered: list[RuleSnapshot] = field(default_factory=list, repr=False)
    _ordered_from: list[RuleSnapshot] | None = field(default=None, repr=False)

    def ordered(self) -> list[RuleSnapshot]:
        """The snapshots in the order rules are tried (sorted once, not once per lead)."""
        if self._ordered_from is not self.snapshots:
            self._ordered = rule_order(self.snapshots)
            self._ordered_from = self.snapshots
        return self._ordered

    def snapshot(self, rule_id: int | None) -> RuleSnapshot | None:
        # called per lead in a batch: an index, rebuilt when someone swaps the list (simulate)
        if self._indexed is not self.snapshots:
            self._index = {r.id: r for r in reversed(self.snapshots)}
            self._indexed = self.snapshots
        return self._index.get(rule_id) if rule_id is not None else None


def rulebook_load(now: datetime, *, automations: bool = False) -> RuleBook:
    """All rules (disabled ones too: the history lists them as tried): the cached
    configuration (1 query) plus the users it names (1 query when there are any)."""
    config = routing_config(now)
    user_ids = {r.default_agent_id for r in config.rules if r.default_agent_id is not None}
    if automations:
        user_ids |= {a.target_user_id for a in config.automations if a.target_user_id is not None}
    # users change at any time (away, deactivated): never served from the cache
    users = (
        {u.pk: u for u in User.objects.select_related("agent").filter(pk__in=user_ids)}
        if user_ids
        else {}
    )
    schedules_fill(
        config.schedules,
        (getattr(getattr(u, "agent", None), "schedule_id", None) for u in users.values()),
        now,
    )
    snapshots = []
    for model, snap in zip(config.rules, config.snapshots, strict=True):
        default = users.get(model.default_agent_id) if model.default_agent_id else None
        if default is not None:
            snap = replace(
                snap, default_agent=agent_snapshot(default, now, schedules=config.schedules)
            )
        snapshots.append(snap)
    return RuleBook(
        snapshots,
        {r.pk: r for r in config.rules},
        automations=list(config.automations) if automations else [],
        schedules=config.schedules,
        users=users,
        extra_fields=config.extra_fields,
    )
