"""Helpers for routing tests: pools, rules, schedules and leads posted the real way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from distribution.models import Pool, PoolMember, Rule, Schedule, ScheduleInterval, Strategy
from distribution.models.routing import ASSIGNING_STRATEGIES, INITIAL_ACTIVITIES
from leads.models import Lead
from leads.services import lead_ingest
from tests.factories import AgentFactory, SourceFactory

UTC = dt.UTC


def make_pool(agents: list[Any], name: str = "pool", **member_fields: Any) -> Pool:
    pool = Pool.objects.create(name=name)
    for i, agent in enumerate(agents):
        PoolMember.objects.create(pool=pool, agent=agent, position=i, **member_fields)
    return pool


def make_rule(
    name: str = "rule", *, pool: Pool | None = None, sources: list[Any] = (), **fields: Any
) -> Rule:
    fields.setdefault("enabled", True)
    fields.setdefault("priority", 10)
    if fields.get("strategy", Strategy.ROUND_ROBIN) in ASSIGNING_STRATEGIES:
        # as the admin form and config files require: an assigning rule names both
        fields.setdefault(
            "initial_activity", INITIAL_ACTIVITIES[fields.get("initial_status", "assigned")][0]
        )
    rule = Rule.objects.create(name=name, pool=pool, **fields)
    rule.sources.set(sources)
    return rule


def make_schedule(
    name: str = "hours",
    *,
    tz: str = "UTC",
    days: range | list[int] = range(5),
    start: str = "09:00",
    end: str = "17:00",
    **fields: Any,
) -> Schedule:
    schedule = Schedule.objects.create(name=name, timezone=tz, **fields)
    for day in days:
        ScheduleInterval.objects.create(
            schedule=schedule,
            weekday=day,
            start=dt.time.fromisoformat(start),
            end=dt.time.fromisoformat(end),
        )
    return schedule


@pytest.fixture
def agents(db: None) -> Callable[[int], list[Any]]:
    def make(n: int, **profile: Any) -> list[Any]:
        extra = {f"profile__{k}": v for k, v in profile.items()}
        return [AgentFactory(**extra) for _ in range(n)]

    return make


@pytest.fixture
def web(db: None) -> Any:
    return SourceFactory(slug="web")


@pytest.fixture
def post(django_capture_on_commit_callbacks: Any, web: Any) -> Iterator[Callable[..., Lead]]:
    """Ingest a lead the way the API does and run what is queued on commit (eager Celery)."""
    counter = iter(range(10**6))

    def _post(source: Any = None, **data: Any) -> Lead:
        n = next(counter)
        data.setdefault("email", f"lead{n}@example.com")
        data.setdefault("external_id", f"x{n}")
        with django_capture_on_commit_callbacks(execute=True):
            lead, _ = lead_ingest(source=source or web, data=data)
        lead.refresh_from_db()
        return lead

    yield _post


@pytest.fixture
def eager_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager tasks that really run their retries in process: with task_eager_propagates
    (the test settings) Celery raises a task's Retry instead of running it again."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)
