"""distribution.db.locks: the fixed SQL pool lock locks what the ORM's does; both claim-lock
twins refuse a second claimer of a lead at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import DatabaseError, connections, transaction

from distribution.db import locks
from distribution.models import Pool
from leads.models import Lead
from tests.factories import LeadFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _free(pool_id: int) -> bool:
    """Whether another connection can lock the pool row right now (NOWAIT)."""
    answer: list[bool] = []

    def other() -> None:
        try:
            with transaction.atomic():
                list(Pool.objects.select_for_update(nowait=True).filter(pk=pool_id))
            answer.append(True)
        except DatabaseError:
            answer.append(False)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    return answer[0]


@pytest.mark.parametrize("twin", [locks._pg, locks._portable], ids=["postgresql", "portable"])
def test_pools_lock_twins_lock_exactly_the_given_pools(twin: Callable[[list[int]], None]) -> None:
    first, second, other = (Pool.objects.create(name=n) for n in ("a", "b", "c"))
    with transaction.atomic():
        twin(sorted([first.pk, second.pk]))
        held = [not _free(p.pk) for p in (first, second, other)]
    assert held == [True, True, False]
    assert _free(first.pk) and _free(second.pk)  # released at commit


def _held_by_a_claim(lead_id: int, twin: Callable[[int], bool], then: Callable[[], bool]) -> bool:
    """THEN's answer while another connection's open transaction holds the lead's claim
    lock through TWIN."""
    inside, done = threading.Event(), threading.Event()
    took: list[bool] = []

    def claimer() -> None:
        try:
            with transaction.atomic():
                took.append(twin(lead_id))
                inside.set()
                done.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=claimer)
    thread.start()
    try:
        assert inside.wait(30)
        return then()
    finally:
        done.set()
        thread.join()
        assert took == [True]


def _try(twin: Callable[[int], bool], lead_id: int) -> bool:
    with transaction.atomic():
        return twin(lead_id)


CLAIM_TWINS = [locks._claim_pg, locks._claim_portable]


@pytest.mark.parametrize("twin", CLAIM_TWINS, ids=["postgresql", "portable"])
def test_lead_claim_lock_twins_refuse_a_second_claimer_at_once(
    twin: Callable[[int], bool],
) -> None:
    first, other = LeadFactory(), LeadFactory()
    answers = _held_by_a_claim(first.pk, twin, lambda: [_try(twin, first.pk), _try(twin, other.pk)])
    assert answers == [False, True]  # the held lead refused, not waited for; others free
    assert _try(twin, first.pk)  # free again once the first claimer's transaction ended


def test_lead_claim_lock_is_not_taken_by_a_lead_row_lock() -> None:
    """On PostgreSQL a decline, an expiry or a routing batch holding the lead row (not a
    claim) does not make a claimer lose: the claimer then waits for the row as before."""
    lead = LeadFactory()
    inside, done = threading.Event(), threading.Event()

    def row_holder() -> None:
        try:
            with transaction.atomic():
                list(Lead.objects.select_for_update().filter(pk=lead.pk))
                inside.set()
                done.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=row_holder)
    thread.start()
    try:
        assert inside.wait(30)
        assert _try(locks._claim_pg, lead.pk)
    finally:
        done.set()
        thread.join()
