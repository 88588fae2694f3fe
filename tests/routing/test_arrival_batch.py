"""Arrival routing through the batch path (issue 10 item 2): the arrival task routes every
lead pending at that moment (up to a chunk, oldest first) together with its own, so one
task does the work of many under load; concurrent arrival tasks never route a lead twice."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count

from distribution.models import DistributionAttempt
from distribution.services.distribute import leads_distribute_arrival
from distribution.tasks import distribute_lead
from leads.models import Lead
from tests.routing.conftest import make_pool, make_rule

_numbers = itertools.count()


def pending_leads(source: Any, n: int, lane: str = "live") -> list[int]:
    """N leads stored and pending, as if their own tasks had not run yet (a busy worker)."""
    numbers = [next(_numbers) for _ in range(n)]
    leads = Lead.objects.bulk_create(
        Lead(source=source, email=f"w{i}@example.com", external_id=f"w{i}", lane=lane)
        for i in numbers
    )
    return [lead.pk for lead in leads]


@pytest.fixture
def routed(agents: Any, web: Any) -> Any:
    a, b = agents(2)
    make_rule(pool=make_pool([a, b], cap_day=1000), sources=[web])
    return [a.pk, b.pk]


@pytest.mark.django_db
def test_an_arrival_routes_the_leads_pending_with_it_and_their_tasks_find_nothing_left(web, routed):
    waiting = pending_leads(web, 5)
    (arrived,) = pending_leads(web, 1)

    assert distribute_lead(arrived) == "assigned"

    leads = Lead.objects.filter(pk__in=[*waiting, arrived])
    assert {lead.status for lead in leads} == {"assigned"}
    assert {lead.owner_id for lead in leads} == set(routed)  # round robin over the batch
    assert set(DistributionAttempt.objects.values_list("trigger", flat=True)) == {"arrival"}
    assert [distribute_lead(lead_id) for lead_id in waiting] == [None] * 5  # idempotent


@pytest.mark.django_db
def test_an_arrival_behind_a_larger_backlog_is_routed_with_the_oldest_of_the_chunk(web, routed):
    backlog = pending_leads(web, 10)
    (arrived,) = pending_leads(web, 1)

    attempt = leads_distribute_arrival(lead_id=arrived, chunk=4)

    assert attempt is not None and attempt.lead_id == arrived
    # the first chunk: itself, then the oldest three; then the backlog, chunk after chunk
    order = list(DistributionAttempt.objects.order_by("id").values_list("lead_id", flat=True))
    assert set(order[:4]) == {arrived, *backlog[:3]}
    assert sorted(order) == sorted([*backlog, arrived])  # one task, every lead once
    assert not Lead.objects.filter(status="pending").exists()


@pytest.mark.django_db
def test_a_live_arrival_carries_no_imported_row_and_an_imported_row_no_live_lead(web, routed):
    imported = pending_leads(web, 6, lane="bulk")  # a CSV import's backlog, older
    (live,) = pending_leads(web, 1)
    (waiting_live,) = pending_leads(web, 1)

    assert distribute_lead(live) == "assigned"
    assigned = set(Lead.objects.filter(status="assigned").values_list("id", flat=True))
    assert assigned == {live, waiting_live}  # the import's rows stay with the bulk lane

    (late_live,) = pending_leads(web, 1)
    assert distribute_lead(imported[0]) == "assigned"  # a bulk task routes bulk rows
    pending = set(Lead.objects.filter(status="pending").values_list("id", flat=True))
    assert pending == {late_live}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_arrival_tasks_route_every_pending_lead_exactly_once(web, routed):
    ids = pending_leads(web, 150)
    errors: list[BaseException] = []

    def work(share: list[int]) -> None:
        try:
            for lead_id in share:
                distribute_lead(lead_id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(ids[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert set(Lead.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"assigned"}
    per_lead = Counter(
        dict(
            DistributionAttempt.objects.values_list("lead_id")
            .annotate(n=Count("id"))
            .values_list("lead_id", "n")
        )
    )
    assert set(per_lead) == set(ids) and set(per_lead.values()) == {1}
