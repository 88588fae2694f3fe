"""The leads app's database door (as `distribution.db`, decision S1/L12): the ingestion
insert — duplicate search, the lead row and its timeline events — as ONE statement on
PostgreSQL, the ORM elsewhere. The only `connection.vendor` switch of `leads`.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from leads.models import Lead, LeadEvent, LeadStatus

# a new lead is not linked to these (nor to a duplicate): the original must be open
CLOSED_STATUSES = (LeadStatus.CONVERTED, LeadStatus.LOST, LeadStatus.MERGED)


def lead_insert(lead: Lead, *, created_message: str) -> bool:
    """Insert LEAD with its `created` event and, when an open lead of the same campaign has
    the same normalised e-mail or phone, its duplicate link and `duplicate` event. Sets
    `lead.pk` and `lead.duplicate_of_id`; returns False (nothing written) when a lead with
    the same (source, external_id) is stored already — the unique constraint decides, so
    concurrent repeats collapse into one lead. Another constraint (a campaign deleted
    since it was cached; elsewhere than PostgreSQL the (source, external_id) one too)
    raises IntegrityError, nothing written.

    PostgreSQL: one statement (a data-modifying CTE: find the original, insert the lead
    `ON CONFLICT DO NOTHING`, insert its events) — one round trip, atomic by itself, so
    outside a transaction it needs no BEGIN / COMMIT. Elsewhere: the duplicate query, then
    the lead and its events in one transaction (a savepoint when nested).
    """
    if connection.vendor == "postgresql":
        return _pg_insert(lead, created_message=created_message)
    return _portable_insert(lead, created_message=created_message)


def duplicate_original(lead: Lead) -> Lead | None:
    """The open lead of the same campaign with the same normalised e-mail or phone (the
    oldest); None without a campaign or contact (no query then)."""
    match = Q()
    if lead.email_normalized:
        match |= Q(email_normalized=lead.email_normalized)
    if lead.phone_normalized:
        match |= Q(phone_normalized=lead.phone_normalized)
    if not match or lead.campaign_id is None:
        return None
    return (
        Lead.objects.filter(match, campaign_id=lead.campaign_id, duplicate_of__isnull=True)
        .exclude(status__in=CLOSED_STATUSES)
        .order_by("created_at", "id")
        .only("id", "owner_id")
        .first()
    )


def _duplicate_message(original_id: int) -> str:
    return f"same contact as lead #{original_id}"


def _portable_insert(lead: Lead, *, created_message: str) -> bool:
    original = duplicate_original(lead)
    if original is not None:
        lead.duplicate_of = original
    try:
        with transaction.atomic():
            lead.save(force_insert=True)
            events = [LeadEvent(lead=lead, kind=LeadEvent.Kind.CREATED, message=created_message)]
            if original is not None:
                events.append(
                    LeadEvent(
                        lead=lead,
                        kind=LeadEvent.Kind.DUPLICATE,
                        message=_duplicate_message(original.pk),
                        data={"original": original.pk},
                    )
                )
            LeadEvent.objects.bulk_create(events)
    except IntegrityError:
        lead.pk = None
        lead.duplicate_of = None
        raise
    return True


class _InsertSQL:
    """The fixed statement text and the lead columns it binds, made once per connection."""

    def __init__(self) -> None:
        qn = connection.ops.quote_name
        lead_table, event_table = qn(Lead._meta.db_table), qn(LeadEvent._meta.db_table)
        self.fields = [f for f in Lead._meta.concrete_fields if not f.primary_key]
        dup_column = Lead._meta.get_field("duplicate_of").column
        columns = [qn(str(f.column)) for f in self.fields]
        values = [
            "(SELECT id FROM original)" if f.column == dup_column else "%s" for f in self.fields
        ]
        self.dup_index = next(i for i, f in enumerate(self.fields) if f.column == dup_column)
        ev = {f.attname: qn(str(f.column)) for f in LeadEvent._meta.concrete_fields}
        closed = ", ".join(f"'{s.value}'" for s in CLOSED_STATUSES)
        self.sql = (
            # the open original: same campaign, same normalised e-mail or phone (an empty
            # value never matches: the caller passes NULL for it)
            f"WITH original AS (SELECT id FROM {lead_table} WHERE campaign_id = %s "
            f"AND duplicate_of_id IS NULL AND status NOT IN ({closed}) "
            f"AND (email_normalized = %s OR phone_normalized = %s) "
            f"ORDER BY created_at, id LIMIT 1), "
            f"new AS (INSERT INTO {lead_table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(values)}) ON CONFLICT DO NOTHING "
            f"RETURNING id, {qn(dup_column)} AS original_id), "
            f"events AS (INSERT INTO {event_table} ({ev['lead_id']}, {ev['kind']}, "
            f"{ev['message']}, {ev['data']}, {ev['actor_id']}, {ev['created_at']}) "
            f"SELECT id, %s, %s, '{{}}'::jsonb, NULL::bigint, %s FROM new UNION ALL "
            f"SELECT id, %s, %s || original_id, jsonb_build_object('original', original_id), "
            f"NULL::bigint, %s FROM new WHERE original_id IS NOT NULL) "
            f"SELECT id, original_id FROM new"
        )
        self.sql_no_duplicate_search = self.sql.replace(
            self.sql[: self.sql.index("new AS")], "WITH original AS (SELECT NULL::bigint AS id), "
        )


_statements: dict[str, _InsertSQL] = {}


def _statement() -> _InsertSQL:
    statement = _statements.get(connection.alias)
    if statement is None:
        statement = _statements[connection.alias] = _InsertSQL()
    return statement


def _pg_insert(lead: Lead, *, created_message: str) -> bool:
    statement = _statement()
    values: list[Any] = [
        f.get_db_prep_save(f.pre_save(lead, True), connection) for f in statement.fields
    ]
    del values[statement.dup_index]  # the subquery on the original
    search = lead.campaign_id is not None and bool(lead.email_normalized or lead.phone_normalized)
    prefix: list[Any] = (
        [lead.campaign_id, lead.email_normalized or None, lead.phone_normalized or None]
        if search
        else []
    )
    now = timezone.now()  # as LeadEvent.created_at's default
    events = [
        LeadEvent.Kind.CREATED.value,
        created_message,
        now,
        LeadEvent.Kind.DUPLICATE.value,
        _duplicate_message(0)[:-1],
        now,
    ]
    sql = statement.sql if search else statement.sql_no_duplicate_search
    nested = connection.in_atomic_block
    with transaction.atomic() if nested else _autocommit(), connection.cursor() as cursor:
        params: list[Any] = [*prefix, *values, *events]
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:  # ON CONFLICT: the (source, external_id) is stored already
        return False
    lead.pk, lead.duplicate_of_id = row
    lead._state.adding = False
    lead._state.db = connection.alias
    return True


class _autocommit:
    """No transaction block: the one statement commits by itself; `on_commit` callbacks
    registered after it run at once (Django's autocommit behaviour)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


__all__ = ["duplicate_original", "lead_insert"]
