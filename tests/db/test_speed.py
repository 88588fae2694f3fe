"""distribution.db.speed: both twins give the same speed-to-lead figures per arrival hour,
and those figures are the ones a manager would compute by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from distribution.db import speed
from distribution.db.speed import HourSpeed, percentile_cont
from distribution.models import Assignment, Offer
from tests.factories import AgentFactory, LeadFactory

TWINS = [speed._pg, speed._portable]
H10 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def _lead(at: dt.datetime, *, offer_after: float | None = None, assign_after: float | None = None):
    lead = LeadFactory(created_at=at)
    agent = AgentFactory()
    if offer_after is not None:
        Offer.objects.create(
            lead=lead, agent=agent, created_at=at + dt.timedelta(seconds=offer_after)
        )
        # a later re-offer does not change the first contact
        Offer.objects.create(
            lead=lead,
            agent=AgentFactory(),
            status="expired",
            created_at=at + dt.timedelta(seconds=offer_after + 500),
        )
    if assign_after is not None:
        Assignment.objects.create(
            lead=lead,
            agent=agent,
            method="auto",
            created_at=at + dt.timedelta(seconds=assign_after),
        )
    return lead


def _seed() -> None:
    # 10:00 hour: waits 2, 4, 10 (first of offer / assignment), 6 (assigned only), one unreached
    _lead(H10 + dt.timedelta(minutes=1), offer_after=2)
    _lead(H10 + dt.timedelta(minutes=5), offer_after=4, assign_after=30)
    _lead(H10 + dt.timedelta(minutes=9), offer_after=50, assign_after=10)
    _lead(H10 + dt.timedelta(minutes=20), assign_after=6)
    _lead(H10 + dt.timedelta(minutes=59, seconds=59))
    # 12:00 hour: one lead assigned "before" it arrived (a back-dated import) counts as 0
    _lead(H10 + dt.timedelta(hours=2, minutes=3), assign_after=-30)
    # outside the range
    _lead(H10 - dt.timedelta(minutes=1), offer_after=1)
    _lead(H10 + dt.timedelta(hours=3), offer_after=1)


EXPECTED = [
    HourSpeed(hour=H10, leads=5, reached=4, p50=5.0, p90=pytest.approx(8.8)),  # 2 4 6 10
    HourSpeed(hour=H10 + dt.timedelta(hours=2), leads=1, reached=1, p50=0.0, p90=0.0),
]


@pytest.mark.django_db
def test_the_portable_twin_computes_speed_to_lead_per_hour(django_assert_num_queries):
    _seed()
    with django_assert_num_queries(1):
        hours = speed._portable(since=H10, until=H10 + dt.timedelta(hours=3))
    assert hours == EXPECTED


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("twin", TWINS, ids=["postgresql", "portable"])
def test_speed_twins_agree(twin: Callable[..., list[HourSpeed]], django_assert_num_queries):
    _seed()
    with django_assert_num_queries(1):
        hours = twin(since=H10, until=H10 + dt.timedelta(hours=3))
    assert hours == EXPECTED


def test_percentile_cont_interpolates_as_postgresql_does():
    assert percentile_cont([], 0.5) is None
    assert percentile_cont([7.0], 0.9) == 7.0
    assert percentile_cont([10.0, 2.0, 4.0, 6.0], 0.5) == 5.0
    assert percentile_cont([2.0, 4.0, 6.0, 10.0], 0.9) == pytest.approx(8.8)
