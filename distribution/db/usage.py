"""Cap and budget usage of contracts: counted outbound leads and spend per period.

`cap_usage` is the one entry point; on PostgreSQL a read of a few contracts by id runs one
fixed statement (`cap_usage_sql`), everything else the portable ORM query
(`cap_usage_orm`). Both count the same rows (tests/db/test_usage.py).
"""

from __future__ import annotations

import operator
from datetime import datetime
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db import connection
from django.db.models import Count, Q, Sum

from distribution.engine import marketplace as engine
from distribution.engine.caps import window_starts
from distribution.models import OutboundLead, OutboundMethod, ReturnStatus

ZERO = Decimal(0)
USAGE_PERIODS = ("day", "week", "month")
# The fields of `engine.CapUsage`, in the order the fixed statement selects them.
_USAGE_COLUMNS = (*USAGE_PERIODS, *(f"{p}_spent" for p in USAGE_PERIODS))


def cap_usage(
    *, contracts: dict[int, str], now: datetime, campaign_id: int | None = None
) -> dict[int, engine.CapUsage]:
    """Counted outbound leads and spend of each contract in its current day, week and month
    (in the contract's time zone), in one query.

    CONTRACTS maps contract id → time zone; when they all belong to CAMPAIGN_ID the query
    selects by campaign instead of by id. Cherry-picked outbound leads and approved returns
    are not counted.
    """
    if campaign_id is None and connection.vendor == "postgresql":
        return cap_usage_sql(contracts=contracts, now=now)
    return cap_usage_orm(contracts=contracts, now=now, campaign_id=campaign_id)


def _window_starts(contracts: dict[int, str], now: datetime) -> dict[str, dict[str, datetime]]:
    return {tz: window_starts(now, tz) for tz in sorted(set(contracts.values()))}


def cap_usage_orm(
    *, contracts: dict[int, str], now: datetime, campaign_id: int | None = None
) -> dict[int, engine.CapUsage]:
    """`cap_usage` as a portable ORM query (any database), by campaign or by id."""
    if not contracts:
        return {}
    starts = _window_starts(contracts, now)
    zones = sorted(starts)
    earliest = min(min(s[p] for p in USAGE_PERIODS) for s in starts.values())
    conditions: dict[str, Q] = {}
    for period in USAGE_PERIODS:
        if len(zones) == 1:
            conditions[period] = Q(created_at__gte=starts[zones[0]][period])
        else:
            conditions[period] = reduce(
                operator.or_,
                (Q(contract__timezone=tz, created_at__gte=starts[tz][period]) for tz in zones),
            )
    base = (
        OutboundLead.objects.filter(created_at__gte=earliest)
        .exclude(method=OutboundMethod.CHERRY_PICK)
        .exclude(return_status=ReturnStatus.APPROVED)
    )
    if campaign_id is not None:
        base = base.filter(contract__campaign_id=campaign_id)
    else:
        base = base.filter(contract_id__in=sorted(contracts))
    aggregates: dict[str, Any] = {}
    for period, cond in conditions.items():
        aggregates[period] = Count("id", filter=cond)
        aggregates[f"{period}_spent"] = Sum("price", filter=cond, default=ZERO)
    usage: dict[int, engine.CapUsage] = {}
    rows: list[dict[str, Any]] = list(base.values("contract_id").annotate(**aggregates).order_by())  # type: ignore[arg-type]
    for row in rows:
        if row["contract_id"] in contracts:
            usage[row["contract_id"]] = engine.CapUsage(**{k: row[k] for k in _USAGE_COLUMNS})
    return usage


_CAP_USAGE_SQL = """
SELECT o.contract_id,
       count(*) FILTER (WHERE o.created_at >= z.day),
       count(*) FILTER (WHERE o.created_at >= z.week),
       count(*) FILTER (WHERE o.created_at >= z.month),
       coalesce(sum(o.price) FILTER (WHERE o.created_at >= z.day), 0),
       coalesce(sum(o.price) FILTER (WHERE o.created_at >= z.week), 0),
       coalesce(sum(o.price) FILTER (WHERE o.created_at >= z.month), 0)
FROM {outbound} o
JOIN unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
     AS z(contract_id, day, week, month) ON z.contract_id = o.contract_id
WHERE o.created_at >= %s AND o.method <> %s AND o.return_status <> %s
GROUP BY o.contract_id
"""


def cap_usage_sql(*, contracts: dict[int, str], now: datetime) -> dict[int, engine.CapUsage]:
    """`cap_usage` for a few contracts by id on PostgreSQL: one fixed statement, each
    contract joined to its own window starts (the selection hot path re-reads the usage of
    the contracts it chose or saw sold; building the ORM query cost more than running it)."""
    if not contracts:
        return {}
    starts = _window_starts(contracts, now)
    ids = sorted(contracts)
    windows = [starts[contracts[cid]] for cid in ids]
    earliest = min(w[p] for w in windows for p in USAGE_PERIODS)
    params: list[Any] = [
        ids,
        [w["day"] for w in windows],
        [w["week"] for w in windows],
        [w["month"] for w in windows],
        earliest,
        OutboundMethod.CHERRY_PICK.value,
        ReturnStatus.APPROVED.value,
    ]
    usage: dict[int, engine.CapUsage] = {}
    with connection.cursor() as cursor:
        cursor.execute(_CAP_USAGE_SQL.format(outbound=OutboundLead._meta.db_table), params)
        for cid, *values in cursor.fetchall():
            usage[cid] = engine.CapUsage(**dict(zip(_USAGE_COLUMNS, values, strict=True)))
    return usage
