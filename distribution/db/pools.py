"""Loading locked pools with their members' window counts: one fixed query for every pool
on PostgreSQL, the ORM loader per pool elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from accounts.models import AgentProfile, User
from distribution.engine.caps import window_starts
from distribution.engine.types import (
    PERIODS,
    AgentMetrics,
    AgentSnapshot,
    Caps,
    MemberSnapshot,
    ReceivedCounts,
    ScheduleSnapshot,
)
from distribution.loaders.routing import (
    PoolKey,
    PoolState,
    PoolWanted,
    agent_metrics,
    filters_of,
    pool_state_load,
    schedules_fill,
)
from distribution.models import Assignment, Pool, PoolMember
from leads.models import OPEN_STATUSES, Lead


def _json_value(value: object) -> object:
    # the driver hands jsonb over as text (Django reads JSON columns itself)
    return json.loads(value) if isinstance(value, str) else value


def pools_load(
    wanted: Sequence[PoolWanted], *, now: datetime, schedules: dict[int, ScheduleSnapshot]
) -> dict[PoolKey, PoolState]:
    """Several locked pools at once, keyed `PoolWanted.key` (pool id, cap time zone, metrics
    window): members with their agents and window counts, open leads where asked, and the
    pool's own caps with its window counts. The agents' schedules join the cached
    configuration's SCHEDULES.

    On PostgreSQL 1 query for every pool (+2 for metrics): a fixed SQL text returning plain
    columns, since building the ORM query and three model rows per member cost more than the
    query itself, for one lead as for a batch. Elsewhere the ORM loader, pool by pool.
    """
    if connection.vendor == "postgresql":
        return _pg(wanted, now=now, schedules=schedules)
    return _portable(wanted, now=now, schedules=schedules)


def _portable(
    wanted: Sequence[PoolWanted], *, now: datetime, schedules: dict[int, ScheduleSnapshot]
) -> dict[PoolKey, PoolState]:
    return {
        w.key: pool_state_load(
            pool_id=w.pool_id,
            timezone=w.timezone,
            now=now,
            with_open_leads=w.with_open_leads,
            with_metrics=w.with_metrics,
            schedules=schedules,
            metrics_window=w.metrics_window,
        )
        for w in wanted
    }


def _pg(
    wanted: Sequence[PoolWanted], *, now: datetime, schedules: dict[int, ScheduleSnapshot]
) -> dict[PoolKey, PoolState]:
    if not wanted:
        return {}
    qn = connection.ops.quote_name
    member, user = qn(PoolMember._meta.db_table), qn(User._meta.db_table)
    pool = qn(Pool._meta.db_table)
    profile, given, lead = (
        qn(AgentProfile._meta.db_table),
        qn(Assignment._meta.db_table),
        qn(Lead._meta.db_table),
    )
    starts = [window_starts(now, w.timezone) for w in wanted]
    # one row of window starts per wanted pool; the lateral count per member walks the
    # (pool, agent, created_at) index, the open-lead count the owner index
    # no pool asking for open leads: no subquery to plan (a third of the planning time)
    with_open_leads = any(w.with_open_leads for w in wanted)
    owned = (
        f"CASE WHEN w.open THEN (SELECT count(*) FROM {lead} l WHERE l.owner_id = m.agent_id "
        "AND l.status = ANY(%s)) ELSE 0 END "
        if with_open_leads
        else "0 "
    )
    # the pool's own caps, and its window counts once per wanted pool (materialised: not
    # once per member row), counted only when it has a cap (a one-time filter otherwise)
    capped = " OR ".join(f"po.cap_{p} IS NOT NULL" for p in PERIODS)
    sql = (
        "WITH w AS MATERIALIZED (SELECT * FROM unnest(%s::integer[], %s::bigint[], "
        "%s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], "
        "%s::timestamptz[], %s::boolean[]) "
        "AS w(k, pool_id, hour, day, week, month, earliest, open)), "
        "pc AS MATERIALIZED (SELECT w.k, po.cap_hour, po.cap_day, po.cap_week, po.cap_month, "
        "c.hour, c.day, c.week, c.month "
        f"FROM w JOIN {pool} po ON po.id = w.pool_id "
        "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE a.created_at >= w.hour) AS hour, "
        "count(*) FILTER (WHERE a.created_at >= w.day) AS day, "
        "count(*) FILTER (WHERE a.created_at >= w.week) AS week, "
        "count(*) FILTER (WHERE a.created_at >= w.month) AS month "
        f"FROM {given} a WHERE ({capped}) AND a.pool_id = w.pool_id "
        "AND a.created_at >= w.earliest) c) "
        "SELECT w.k, m.id, m.agent_id, m.position, m.weight, m.active, m.filters, m.cap_hour, "
        "m.cap_day, m.cap_week, m.cap_month, u.email, u.is_active, p.id, p.active, "
        "p.available, p.last_turn_at, p.schedule_id, p.phone, c.hour, c.day, c.week, c.month, "
        + owned
        + ", pc.cap_hour, pc.cap_day, pc.cap_week, pc.cap_month, pc.hour, pc.day, pc.week, "
        "pc.month "
        "FROM w JOIN pc ON pc.k = w.k "
        f"JOIN {member} m ON m.pool_id = w.pool_id "
        f"JOIN {user} u ON u.id = m.agent_id "
        f"LEFT JOIN {profile} p ON p.user_id = m.agent_id "
        "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE a.created_at >= w.hour) AS hour, "
        "count(*) FILTER (WHERE a.created_at >= w.day) AS day, "
        "count(*) FILTER (WHERE a.created_at >= w.week) AS week, "
        "count(*) FILTER (WHERE a.created_at >= w.month) AS month "
        f"FROM {given} a WHERE a.pool_id = m.pool_id AND a.agent_id = m.agent_id "
        "AND a.created_at >= w.earliest) c "
        "ORDER BY w.k, m.position, m.id"
    )
    params: list[Any] = [
        list(range(len(wanted))),
        [w.pool_id for w in wanted],
        *([s[p] for s in starts] for p in PERIODS),
        [min(s.values()) for s in starts],
        [w.with_open_leads for w in wanted],
    ]
    if with_open_leads:
        params.append([str(s) for s in OPEN_STATUSES])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    schedules_fill(schedules, {r[17] for r in rows}, now)
    per_pool: list[list[tuple[Any, ...]]] = [[] for _ in wanted]
    for row in rows:
        per_pool[row[0]].append(row)
    out: dict[PoolKey, PoolState] = {}
    for w, pool_rows in zip(wanted, per_pool, strict=True):
        agent_ids = [r[2] for r in pool_rows]
        metrics = (
            agent_metrics(agent_ids, now, w.metrics_window) if w.with_metrics and agent_ids else {}
        )
        members = [_member_snapshot(r, metrics.get(r[2]), schedules) for r in pool_rows]
        first = pool_rows[0] if pool_rows else None
        caps = Caps(*first[24:28]) if first is not None else Caps()
        out[w.key] = PoolState(
            pool_id=w.pool_id,
            timezone=w.timezone,
            members=members,
            index={m.agent.id: i for i, m in enumerate(members)},
            contacts={r[2]: (r[11] or "", r[18] or "") for r in pool_rows},
            caps=caps,
            counts=(
                ReceivedCounts(*first[28:32])
                if first is not None and caps.items()
                else ReceivedCounts()
            ),
        )
    return out


def _member_snapshot(
    row: tuple[Any, ...],
    metrics: AgentMetrics | None,
    schedules: Mapping[int, ScheduleSnapshot],
) -> MemberSnapshot:
    """One row of `_pg` as agent_snapshot and pool_state_load build it."""
    (_, member_id, agent_id, position, weight, active, filters, hour, day, week, month) = row[:11]
    email, user_active, profile_id, profile_active, available, last_turn, schedule_id = row[11:18]
    if profile_id is None:  # a user without agent profile is inactive
        agent = AgentSnapshot(id=agent_id, email=email or "", active=False)
    else:
        agent = AgentSnapshot(
            id=agent_id,
            email=email or "",
            active=bool(profile_active and user_active),
            available=available,
            schedule=schedules.get(schedule_id) if schedule_id else None,
            last_turn_at=last_turn,
            open_leads=row[23],
            metrics=metrics,
        )
    return MemberSnapshot(
        id=member_id,
        agent=agent,
        position=position,
        weight=float(weight),
        active=active,
        caps=Caps(hour, day, week, month),
        filters=filters_of(_json_value(filters)),
        received_counts=ReceivedCounts(*row[19:23]),
    )
