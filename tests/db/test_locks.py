"""distribution.db.locks: the fixed SQL pool lock locks what the ORM's does."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import DatabaseError, connections, transaction

from distribution.db import locks
from distribution.models import Pool

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
