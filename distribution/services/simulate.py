"""Simulate distribution (seed 002): who would get what and why — nothing is written.

Replays the leads of the last N days, oldest first, each at its own arrival time, through
the same engine as live routing, with a rule optionally changed (and treated as enabled).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from distribution.caches.routing import rulebook_load
from distribution.engine import routing as engine
from distribution.engine.types import Caps, Decision, MemberSnapshot, RuleSnapshot
from distribution.errors import NotFound
from distribution.loaders.routing import (
    PoolState,
    directory_load,
    filters_of,
    lead_snapshot,
    pool_state_load,
    schedule_snapshot,
)
from distribution.models import Pool, Rule, Schedule
from leads.models import Lead

CAP_ORDER = ("day", "week", "month", "hour")  # which cap the totals report, first set wins


def _changed_rule(rule: RuleSnapshot, changes: dict[str, Any], now: datetime) -> RuleSnapshot:
    """RULE with CHANGES applied (the admin form's or --set values), and enabled."""
    from distribution.configuration.base import parse_duration

    values: dict[str, Any] = {"enabled": True}
    for key, value in changes.items():
        if value in (None, ""):
            continue
        if key == "strategy":
            values["strategy"] = str(value)
        elif key == "pool":
            pool = Pool.objects.filter(name=value).first()
            if pool is None:
                raise NotFound(f"No pool {value!r}.")
            values["pool_id"] = pool.pk
        elif key in ("claim_timeout",):
            values[key] = parse_duration(value)
        elif key in ("batch_size", "max_rounds", "pull_allotment", "priority"):
            values[key] = int(value)
        elif key == "filters":
            values["filters"] = filters_of(value)
        elif key == "caps":
            caps = dict(value)
            values["caps"] = Caps(
                *(
                    int(caps[p]) if caps.get(p) not in (None, "") else None
                    for p in ("hour", "day", "week", "month")
                )
            )
        elif key == "after_hours":
            values["after_hours"] = str(value)
        elif key == "schedule":
            schedule = (
                Schedule.objects.prefetch_related("intervals", "holidays")
                .filter(name=value)
                .first()
            )
            if schedule is None:
                raise NotFound(f"No schedule {value!r}.")
            values["schedule"] = schedule_snapshot(schedule, now.date())
        elif key == "sources":
            values["sources"] = frozenset(value)
        else:
            raise ValueError(f"cannot simulate a change of {key!r}")
    return dataclasses.replace(rule, **values)


def _cap_shown(member: MemberSnapshot, rule: RuleSnapshot) -> int | None:
    caps = member.caps.merged_over(rule.caps)
    return next((c for p in CAP_ORDER if (c := caps.get(p)) is not None), None)


def _replayable(state: PoolState) -> PoolState:
    """The pool with receipts as timestamps, so day/week windows roll over in the replay."""
    members = [dataclasses.replace(m, received_counts=None, received_at=()) for m in state.members]
    return dataclasses.replace(state, members=members)


def rule_simulate(
    *,
    rule_name: str | None = None,
    days: int = 7,
    changes: dict[str, Any] | None = None,
    now: datetime | None = None,
    limit: int = 5000,
) -> dict[str, Any]:
    """Replay the last DAYS days of leads; returns the DESIGN §7 simulate document.

    1. Load the rules (RULE_NAME changed by CHANGES and enabled) and the pools once.
    2. For each lead, oldest first, at its arrival time: match the rule table; decide.
    3. A lead given (or offered alone) to an agent advances that agent's turn and counts
       toward the caps of later decisions, as a claim would.
    4. With RULE_NAME, only the leads that rule would take are reported.
    Nothing is written: no lock, no insert, no update.
    """
    now = now or timezone.now()
    book = rulebook_load(now)
    target: RuleSnapshot | None = None
    if rule_name is not None:
        model = Rule.objects.filter(name=rule_name).first()
        if model is None:
            raise NotFound(f"No rule {rule_name!r}.")
        original = book.snapshot(model.pk)
        assert original is not None
        target = _changed_rule(original, changes or {}, now)
        book.snapshots = [target if r.id == target.id else r for r in book.snapshots]
    leads = list(
        Lead.objects.filter(created_at__gte=now - timedelta(days=days), created_at__lte=now)
        .select_related("source", "campaign")
        .order_by("created_at", "id")[:limit]
    )
    snaps = [lead_snapshot(lead) for lead in leads]
    pools: dict[int, PoolState] = {}
    for rule in book.snapshots:
        if rule.pool_id is not None and rule.pool_id not in pools:
            pools[rule.pool_id] = _replayable(
                pool_state_load(
                    pool_id=rule.pool_id,
                    timezone=rule.cap_timezone,
                    now=now,
                    with_open_leads=rule.strategy == "load_balanced",
                    with_metrics=rule.strategy == "performance" or bool(rule.tiers),
                )
            )
    directory = directory_load(snaps, now)
    decisions: list[dict[str, Any]] = []
    received: Counter[str] = Counter()
    for snap in snaps:
        match = engine.match_rule(snap, book.snapshots)
        if target is not None and (match.rule is None or match.rule.id != target.id):
            continue
        matched = match.rule
        if matched is None:
            decision = Decision(
                outcome="queue_unassigned",
                reason_code="no_rule_matched",
                reason="no enabled rule matches",
                rules_tried=match.tried,
            )
            state = None
        else:
            state = pools.get(matched.pool_id) if matched.pool_id is not None else None
            decision = engine.decide(
                matched,
                snap,
                state.members if state else [],
                snap.created_at,
                rules_tried=match.tried,
                directory=directory,
            )
        owner = None
        if decision.chosen and (decision.outcome == "assign" or len(decision.chosen) == 1):
            owner = decision.chosen[0]
            received[owner.email] += 1
            if state is not None and owner.member_id is not None:
                i = state.index[owner.agent_id]
                m = state.members[i]
                state.members[i] = dataclasses.replace(
                    m,
                    agent=dataclasses.replace(
                        m.agent, last_turn_at=engine.turn_timestamp(state.members, snap.created_at)
                    ),
                    received_at=(*m.received_at, snap.created_at),
                )
        decisions.append(
            {
                "lead": snap.id,
                "rule": decision.rule_name,
                "owner": owner.email if owner else None,
                "status": decision.status,
                "reason": decision.reason,
                "candidates": [
                    {"agent": c.email, "rank": c.rank, "reason": c.reason}
                    for c in decision.candidates
                ],
            }
        )
    totals: dict[str, dict[str, int | None]] = {}
    shown = [target] if target is not None else [r for r in book.snapshots if r.enabled]
    for rule in shown:
        state = pools.get(rule.pool_id) if rule.pool_id is not None else None
        for member in state.members if state else []:
            entry = totals.setdefault(member.email, {"would_receive": 0, "cap": None})
            cap = _cap_shown(member, rule)
            if cap is not None:
                entry["cap"] = cap if entry["cap"] is None else min(entry["cap"] or cap, cap)
    for email, n in received.items():
        totals.setdefault(email, {"would_receive": 0, "cap": None})["would_receive"] = n
    return {"decisions": decisions, "totals": dict(sorted(totals.items()))}
