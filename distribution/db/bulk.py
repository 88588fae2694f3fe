"""Bulk writes of new and changed rows: on PostgreSQL one statement (JSON record sets in
data-modifying CTEs) plus a COPY per long list; elsewhere Django's bulk operations.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import JSONField

COPY_MIN_ROWS = 20  # in a batch, lists of fewer rows go in the one statement, longer by COPY


class EncodedJSON(list[Any]):
    """A list for a JSON column together with its JSON text, made where the list is made
    (from cached pieces): the bulk writes send the text instead of encoding the list again.
    It is an ordinary list to everyone else; the text is what `json.dumps` makes of it."""

    __slots__ = ("text",)

    def __init__(self, items: list[Any], text: str) -> None:
        super().__init__(items)
        self.text = text


class EncodedJSONObject(dict[str, Any]):
    """A dict for a JSON column together with its JSON text (as EncodedJSON for lists)."""

    __slots__ = ("text",)

    def __init__(self, items: dict[str, Any], text: str) -> None:
        super().__init__(items)
        self.text = text


_ENCODED = (EncodedJSON, EncodedJSONObject)


class RowsUpdate(NamedTuple):
    """FIELDS of ROWS of MODEL to write, each row found by its KEY column (default: pk)."""

    model: type[Any]
    rows: Sequence[Any]
    fields: Sequence[str]
    key: str = "pk"


def rows_write(
    *,
    updates: Sequence[RowsUpdate],
    inserts: Sequence[tuple[type[Any], Sequence[Any]]],
    batch: bool,
) -> None:
    """Write changed rows (UPDATES) and new rows (INSERTS: model, rows; they get no primary
    key back). On PostgreSQL the UPDATEs and INSERTs go to the server as one statement
    (data-modifying CTEs: one round trip, no ORM query building), each from one JSON
    parameter (cheap to build and to plan at any size); in a BATCH (several leads) the lists
    of COPY_MIN_ROWS rows or more go by COPY instead. Elsewhere Django's bulk_update /
    bulk_create. Empty lists write nothing."""
    if connection.vendor == "postgresql":
        return _pg(updates, inserts, batch=batch)
    return _portable(updates, inserts)


def _portable(
    updates: Sequence[RowsUpdate], inserts: Sequence[tuple[type[Any], Sequence[Any]]]
) -> None:
    for u in updates:
        if not u.rows:
            continue
        if u.key == "pk":
            u.model.objects.bulk_update(u.rows, list(u.fields))
        else:
            for row in u.rows:
                u.model.objects.filter(**{u.key: getattr(row, f"{u.key}_id")}).update(
                    **{f: getattr(row, f) for f in u.fields}
                )
    for model, rows in inserts:
        if rows:
            model.objects.bulk_create(rows)


def _pg(
    updates: Sequence[RowsUpdate],
    inserts: Sequence[tuple[type[Any], Sequence[Any]]],
    *,
    batch: bool,
) -> None:
    statements = [_update_sql(u.model, u.rows, u.fields, key=u.key) for u in updates if u.rows]
    copies = []
    # one lead's writes always go in the one statement (broadcast offers included), so
    # its cost does not grow a statement with the pool's size
    for model, rows in inserts:
        if batch and len(rows) >= COPY_MIN_ROWS:
            copies.append((model, rows))
        elif rows:
            statements.append(_insert_sql(model, rows))
    if statements:
        if len(statements) == 1:
            sql, params = statements[0]
        else:
            # every sub-statement runs to completion; they write different tables
            ctes = ", ".join(f"w{i} AS ({text})" for i, (text, _) in enumerate(statements))
            sql = f"WITH {ctes} SELECT 1"
            params = [p for _, values in statements for p in values]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    for model, rows in copies:
        _copy(model, rows)


def _rows_json(fields: Sequence[Any], rows: Sequence[Any], *, stamp: bool) -> str:
    """ROWS as one JSON array of objects keyed by column, for `jsonb_populate_recordset`:
    one text parameter that the driver quotes in C, where a parameter per value (or an
    array per column) was quoted value by value in Python. Times go as ISO 8601 text (aware,
    as Django sends them), JSON columns as nested JSON. STAMP: read each value through
    `pre_save` (auto_now fields stamped), as an INSERT does."""
    columns = [f.column for f in fields]
    times = [
        i
        for i, f in enumerate(fields)
        if f.get_internal_type() in ("DateTimeField", "DateField", "TimeField")
    ]
    if stamp:
        values_of: Callable[[Any], Sequence[Any]] = lambda row: [  # noqa: E731
            f.pre_save(row, True) for f in fields
        ]
    else:
        read = operator.attrgetter(*(f.attname for f in fields))
        values_of = (lambda row: (read(row),)) if len(fields) == 1 else read
    objects = []
    for row in rows:
        values = values_of(row)
        if times:
            values = list(values)
            for i in times:
                value = values[i]
                if value is not None:
                    if isinstance(value, datetime) and value.tzinfo is None:
                        value = fields[i].get_db_prep_save(value, connection)  # made aware
                    values[i] = value.isoformat()
        objects.append(dict(zip(columns, values, strict=True)))
    # other values (decimals, UUIDs, durations) as Django's encoder writes them
    return json.dumps(objects, cls=DjangoJSONEncoder)


def _update_sql(
    model: type[Any], rows: Sequence[Any], fields: Sequence[str], *, key: str = "pk"
) -> tuple[str, list[Any]]:
    """The PostgreSQL `UPDATE … FROM jsonb_populate_recordset()` of rows_write and its one
    parameter (the rows as JSON, typed by the table's own row type: cheap to build and to
    plan at any size)."""
    meta = model._meta
    qn = connection.ops.quote_name
    key_field = meta.pk if key == "pk" else meta.get_field(key)
    columns = [key_field, *(meta.get_field(f) for f in fields)]
    sets = ", ".join(f"{qn(c.column)} = v.{qn(c.column)}" for c in columns[1:])
    table, key_column = qn(meta.db_table), qn(key_field.column)
    # the LIMIT tells the planner how many rows come (it assumes 100 from a function):
    # one lead's UPDATE then looks its row up by key instead of hashing the whole table
    sql = (
        f"UPDATE {table} AS t SET {sets} FROM (SELECT * FROM jsonb_populate_recordset("
        f"NULL::{table}, %s::jsonb) LIMIT {len(rows):d}) AS v "
        f"WHERE t.{key_column} = v.{key_column}"
    )
    return sql, [_rows_json(columns, rows, stamp=False)]


def _insert_sql(model: type[Any], rows: Sequence[Any]) -> tuple[str, list[Any]]:
    """A PostgreSQL INSERT of new rows from one JSON parameter, values as bulk_create
    prepares them (auto_now stamped); the rows get no primary key back."""
    meta = model._meta
    qn = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(qn(f.column) for f in fields)
    table = qn(meta.db_table)
    params = [_rows_json(fields, rows, stamp=True)]
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
    )
    return sql, params


def _copy_rows(fields: Sequence[Any], rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """The values COPY writes for ROWS: the attributes (read in one C call per row), JSON as
    its text (as `json.dumps(value, cls=encoder)` writes it, one encoder for all rows),
    auto_now fields stamped."""
    read = operator.attrgetter(*(f.attname for f in fields))
    encoders = [
        (i, (f.encoder or DjangoJSONEncoder)())
        for i, f in enumerate(fields)
        if isinstance(f, JSONField)
    ]
    stamped = [
        (i, f)
        for i, f in enumerate(fields)
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    single = len(fields) == 1
    for row in rows:
        values: Sequence[Any] = [read(row)] if single else read(row)
        if encoders or stamped:
            values = list(values)
            for i, encoder in encoders:
                value = values[i]
                values[i] = value.text if type(value) in _ENCODED else encoder.encode(value)
            for i, f in stamped:
                values[i] = f.pre_save(row, True)
        yield values


def _copy(model: type[Any], rows: Sequence[Any]) -> None:
    """Insert new rows by COPY (no per-row SQL to build, no array escaping of JSON
    documents: several times faster than an INSERT of the distribution history). The rows
    get no primary key back."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    sql = f'COPY "{meta.db_table}" ({columns}) FROM STDIN'
    started = time.monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for values in _copy_rows(fields, rows):
            copy.write_row(values)
    if connection.queries_logged:  # count the COPY like any statement (query budgets)
        connection.queries_log.append(
            {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"}
        )
