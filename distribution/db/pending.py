"""The pending leads a batch routes, locked, and the sweeper's claim of stale pending leads:
one fixed SQL text on PostgreSQL, the ORM elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import connection, transaction
from django.db.models import Model, Q
from django.db.models.base import ModelState

from distribution.loaders.routing import locked_leads
from distribution.models import Workflow
from leads.models import Campaign, DistributionState, Lead, Source

M = TypeVar("M", bound=Model)


class _RowReader(Generic[M]):
    """Model rows from a fixed SELECT of every concrete column of MODEL (`columns`), made as
    `Model.from_db` makes them — values through the fields' converters (JSON text to
    Python, ...), no deferred field — without going through `Model.__init__`."""

    def __init__(self, model: type[M], alias: str) -> None:
        qn = connection.ops.quote_name
        fields = list(model._meta.concrete_fields)
        self.model = model
        self.columns = [f"{alias}.{qn(str(f.column))}" for f in fields]
        self.attnames = [f.attname for f in fields]
        self.converters = [
            (i, f, conv) for i, f in enumerate(fields) for conv in f.get_db_converters(connection)
        ]

    def __call__(self, values: Sequence[Any]) -> M:
        if self.converters:
            values = list(values)
            for i, f, conv in self.converters:
                values[i] = conv(values[i], f, connection)
        row = self.model.__new__(self.model)
        state = row._state = ModelState()
        state.adding = False
        state.db = connection.alias
        row.__dict__.update(zip(self.attnames, values, strict=True))
        return row


_readers: dict[tuple[type[Any], str, str], _RowReader[Any]] = {}


def _reader(model: type[M], alias: str) -> _RowReader[M]:
    """The model's _RowReader for the current connection, made once."""
    key = (model, alias, connection.alias)
    reader = _readers.get(key)
    if reader is None:
        reader = _readers[key] = _RowReader(model, alias)
    return reader


def pending_leads_lock(
    ids: Sequence[int] | None, *, skip_locked: bool, limit: int, lane: str | None = None
) -> list[Lead]:
    """The pending leads to route (of the IDS, when given; of LANE, when given), oldest first,
    locked — not those of a campaign with a marketplace workflow — with their source and
    campaign (1 query).

    On PostgreSQL one fixed SQL text: no ORM query to build, a simple plan, one model row per
    lead (sources and campaigns are few: one row each, shared). The duplicate-of lead is not
    joined: only a sticky-owner rule reads it (`Router.attach_originals`).
    """
    if connection.vendor == "postgresql":
        return _pg(ids, skip_locked=skip_locked, limit=limit, lane=lane)
    return _portable(ids, skip_locked=skip_locked, limit=limit, lane=lane)


def _portable(
    ids: Sequence[int] | None, *, skip_locked: bool, limit: int, lane: str | None = None
) -> list[Lead]:
    extra = {} if lane is None else {"lane": lane}
    return locked_leads(
        ids,
        skip_locked=skip_locked,
        limit=limit,
        distribution_state=DistributionState.PENDING,
        campaign__workflow__isnull=True,
        **extra,
    )


def _pg(
    ids: Sequence[int] | None, *, skip_locked: bool, limit: int, lane: str | None = None
) -> list[Lead]:
    qn = connection.ops.quote_name
    read_lead, read_source = _reader(Lead, "l"), _reader(Source, "s")
    read_campaign = _reader(Campaign, "c")
    workflow_table = qn(Workflow._meta.db_table)
    workflow_column = qn(Workflow._meta.get_field("campaign").column)
    where = ["l.distribution_state = %s"]
    params: list[Any] = [DistributionState.PENDING.value]
    if ids is not None:
        where.append("l.id = ANY(%s)")
        params.append(list(ids))
    if lane is not None:
        where.append("l.lane = %s")
        params.append(lane)
    sql = (
        f"SELECT {', '.join(read_lead.columns + read_source.columns + read_campaign.columns)} "
        f"FROM {qn(Lead._meta.db_table)} l "
        f"LEFT JOIN {qn(Source._meta.db_table)} s ON s.id = l.source_id "
        f"LEFT JOIN {qn(Campaign._meta.db_table)} c ON c.id = l.campaign_id "
        f"WHERE {' AND '.join(where)} AND NOT EXISTS (SELECT 1 FROM {workflow_table} w "
        f"WHERE w.{workflow_column} = l.campaign_id) "
        f"ORDER BY l.created_at, l.id LIMIT %s FOR UPDATE OF l"
        + (" SKIP LOCKED" if skip_locked else "")
    )
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n_lead, n_source = len(read_lead.columns), len(read_source.columns)
    sources: dict[int, Source] = {}
    campaigns: dict[int, Campaign] = {}
    source_cache, campaign_cache = Lead._meta.get_field("source"), Lead._meta.get_field("campaign")
    leads = []
    for row in rows:
        lead = read_lead(row[:n_lead])
        if lead.source_id is not None:
            source = sources.get(lead.source_id)
            if source is None:
                values = row[n_lead : n_lead + n_source]
                source = sources[lead.source_id] = read_source(values)
            source_cache.set_cached_value(lead, source)
        if lead.campaign_id is not None:
            campaign = campaigns.get(lead.campaign_id)
            if campaign is None:
                values = row[n_lead + n_source :]
                campaign = campaigns[lead.campaign_id] = read_campaign(values)
            campaign_cache.set_cached_value(lead, campaign)
        leads.append(lead)
    return leads


def stale_pending_claim(*, cutoff: datetime, now: datetime, limit: int) -> list[tuple[int, str]]:
    """Claim up to LIMIT pending leads, oldest first, untouched and not queued since CUTOFF
    (the visibility window), by stamping their `queued_at` with NOW; their (id, lane)
    pairs, ascending by id.

    The stamp is the claim: a lead claimed once is not claimed again until the window has
    passed, however many sweeps run, and concurrent sweeps take disjoint leads (`SKIP
    LOCKED`), skipping too the leads a worker is distributing (in flight: row locked).
    Leads not queued on purpose (`unqueued`) are not pending and are never taken.
    """
    if connection.vendor == "postgresql":
        return _pg_stale(cutoff=cutoff, now=now, limit=limit)
    return _portable_stale(cutoff=cutoff, now=now, limit=limit)


def _portable_stale(*, cutoff: datetime, now: datetime, limit: int) -> list[tuple[int, str]]:
    with transaction.atomic():
        rows = list(
            Lead.objects.select_for_update(skip_locked=True)
            .filter(
                Q(queued_at__isnull=True) | Q(queued_at__lt=cutoff),
                distribution_state=DistributionState.PENDING,
                updated_at__lt=cutoff,
            )
            .order_by("created_at", "id")
            .values_list("id", "lane")[:limit]
        )
        Lead.objects.filter(pk__in=[lead_id for lead_id, _ in rows]).update(queued_at=now)
    return sorted(rows)


def _pg_stale(*, cutoff: datetime, now: datetime, limit: int) -> list[tuple[int, str]]:
    qn = connection.ops.quote_name
    table = qn(Lead._meta.db_table)
    sql = (
        f"UPDATE {table} SET queued_at = %s WHERE id IN ("
        f"SELECT id FROM {table} WHERE distribution_state = %s AND updated_at < %s "
        f"AND (queued_at IS NULL OR queued_at < %s) ORDER BY created_at, id LIMIT %s "
        f"FOR UPDATE SKIP LOCKED) RETURNING id, lane"
    )
    params: list[Any] = [now, DistributionState.PENDING.value, cutoff, cutoff, limit]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted((row[0], row[1]) for row in cursor.fetchall())
