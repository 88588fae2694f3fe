"""Row locks taken in a fixed order, so concurrent writers wait instead of deadlocking."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from distribution.models import Pool


def pools_lock(pool_ids: Iterable[int]) -> None:
    """Lock pool rows in id order (no deadlocks): pickers of one pool take turns, so
    round robin stays fair and caps exact across workers. On PostgreSQL a fixed text: no
    ORM query to build per lead."""
    ids = sorted(set(pool_ids))
    if not ids:
        return None
    if connection.vendor == "postgresql":
        return _pg(ids)
    return _portable(ids)


def _portable(ids: list[int]) -> None:
    list(
        Pool.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _pg(ids: list[int]) -> None:
    qn = connection.ops.quote_name
    pk = qn(str(Pool._meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk} FROM {qn(Pool._meta.db_table)} WHERE {pk} = ANY(%s) "
            f"ORDER BY {pk} FOR UPDATE",
            [ids],
        )
        cursor.fetchall()
