"""The fingerprint of the routing configuration's tables: what the per-process
configuration cache (distribution.caches.routing) is keyed by."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import connection
from django.db.models import F, TextField, Value
from django.db.models.functions import Cast

from distribution.models import (
    Automation,
    Holiday,
    Organisation,
    Rule,
    Schedule,
    ScheduleInterval,
)
from distribution.models import PerformanceTier as TierRow
from leads.models import Campaign, Source

# The tables the cached configuration is built from. Agents, users and pool members are not
# among them: availability, activity and turns change all day, so they are read fresh.
CONFIG_MODELS: tuple[type[Any], ...] = (
    Rule,
    Rule.sources.through,
    TierRow,
    Schedule,
    ScheduleInterval,
    Holiday,
    Automation,
    Source,
    Campaign,
    Organisation,  # business hours and after-hours policy that rules inherit
)


def config_fingerprint() -> str:
    """A hash of every row of the configuration tables (1 query).

    It hashes the rows' contents, not an `updated_at` or a generation counter that each
    writer must remember to bump: an admin save, apply_config, a `QuerySet.update()`, an
    m2m change, raw SQL or a rolled-back transaction all change (or restore) it, whatever
    the writer and whatever the app servers' clocks. The tables are small (rules, schedules,
    holidays, tiers, automations, sources, campaigns), so the scan costs well under a
    millisecond. The two twins hash differently (the value is only ever compared with
    itself, in one process), but change on the same writes.
    """
    if connection.vendor == "postgresql":
        return _pg()
    return _portable()


def _pg() -> str:
    qn = connection.ops.quote_name
    # one md5 per row (fixed width), so no row content can shift into its neighbour's
    parts = ", ".join(
        f"coalesce((SELECT string_agg(md5(t::text), '' ORDER BY t.{qn(m._meta.pk.column)}) "
        f"FROM {qn(m._meta.db_table)} t), '')"
        for m in CONFIG_MODELS
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT md5(concat_ws('#', {parts}))")
        row = cursor.fetchone()
    return str(row[0]) if row else ""


def _portable() -> str:
    """Every row of every table as (table, pk, each column as text, NULL as None) in one
    UNION ALL query (the shorter tables' rows padded with NULLs), hashed here in a fixed
    order."""
    width = max(len(m._meta.concrete_fields) for m in CONFIG_MODELS)
    queries = []
    for i, model in enumerate(CONFIG_MODELS):
        fields = model._meta.concrete_fields
        columns: dict[str, Any] = {"fp_table": Value(i)}
        for n in range(width):
            value = F(fields[n].attname) if n < len(fields) else Value(None)
            columns[f"fp_{n}"] = Cast(value, TextField())
        queries.append(model.objects.order_by().annotate(**columns).values_list("pk", *columns))
    rows = queries[0].union(*queries[1:], all=True)
    digest = hashlib.md5(usedforsecurity=False)
    for row in sorted(rows, key=lambda r: (r[1], r[0])):  # table, then pk
        digest.update(repr(row).encode())
    return digest.hexdigest()
