"""Locks: pool rows taken in a fixed order, so concurrent writers wait instead of
deadlocking; the claim lock of a lead, tried without waiting, so a losing claimer learns at
once."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import OperationalError, connection, transaction

from distribution.models import Pool
from leads.models import Lead


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


# The claim lock's namespace: the high 32 bits of a PostgreSQL advisory-lock key (one bigint
# key space per database, shared by every advisory user), the lead id in the low 32 bits.
# "LRcl"; a lead id past 2**32 shares a key with one other lead's: a spurious 409 at worst.
CLAIM_LOCK_NAMESPACE = 0x4C52636C


def lead_claim_lock(lead_id: int) -> bool:
    """Try to become the one claimer of the lead for the rest of this transaction, without
    waiting: False at once while another transaction is claiming it (that claimer wins;
    the caller answers already_claimed). Only claims take this lock: a decline, an expiry
    or a routing batch holding the lead row does not make a claimer lose.

    On PostgreSQL a transaction-level advisory lock (`pg_try_advisory_xact_lock`); elsewhere
    the lead row with NOWAIT where the database has it, and nothing where it has no row
    locks (SQLite runs one writer at a time)."""
    if connection.vendor == "postgresql":
        return _claim_pg(lead_id)
    return _claim_portable(lead_id)


def _claim_portable(lead_id: int) -> bool:
    if not connection.features.has_select_for_update_nowait:
        return True
    try:
        with transaction.atomic():
            list(
                Lead.objects.select_for_update(nowait=True, of=("self",))
                .filter(pk=lead_id)
                .values_list("pk", flat=True)
            )
    except OperationalError:
        return False
    return True


def _claim_pg(lead_id: int) -> bool:
    key = (CLAIM_LOCK_NAMESPACE << 32) | (lead_id & 0xFFFFFFFF)  # < 2**63: a bigint
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        row = cursor.fetchone()
    return bool(row and row[0])
