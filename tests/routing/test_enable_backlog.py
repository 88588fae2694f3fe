"""Enabling a rule queues its backlog through the normal task path, in chunks, with no
5,000 limit (issue 9 item 6; DESIGN §3 "Enabling")."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from distribution.models import DistributionAttempt
from distribution.services import rules
from distribution.services.rules import rule_queue_waiting_leads, rules_enable
from distribution.tasks import routing as tasks
from leads.models import Lead
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def chunks(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The chunks queued as `distribute_leads` tasks (they still run: eager Celery)."""
    queued: list[list[int]] = []
    real = tasks.distribute_leads.apply_async

    def spy(*args: Any, **kwargs: Any) -> Any:
        queued.append(list(kwargs["args"][0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks.distribute_leads, "apply_async", spy)
    return queued


def test_enabling_distributes_a_backlog_of_several_chunks_oldest_first(
    agents, post, web, monkeypatch, chunks
):
    monkeypatch.setattr(rules, "BACKLOG_CHUNK", 3)
    a, b = agents(2)
    rule = make_rule(
        pool=make_pool([a, b]),
        sources=[web],
        enabled=False,
        filters=[{"field": "city", "op": "eq", "value": "Delft"}],
    )
    # matching and other leads interleaved: pages of 3 read, chunks of 3 matching queued
    waiting = []
    others = []
    for i in range(8):
        waiting.append(post(city="Delft"))
        if i % 3 == 0:
            others.append(post(city="Leiden"))

    outcomes = rules_enable(rule_ids=[rule.pk])

    assert outcomes == {"enabled": 1, "assigned": 8}
    assert chunks == [[lead.pk for lead in waiting[i : i + 3]] for i in (0, 3, 6)]
    owners = Counter(
        Lead.objects.filter(pk__in=[w.pk for w in waiting]).values_list("owner", flat=True)
    )
    assert owners == {a.pk: 4, b.pk: 4}  # round robin across the chunks
    assert {Lead.objects.get(pk=o.pk).status for o in others} == {"unassigned"}
    assert DistributionAttempt.objects.filter(trigger="enable").count() == 8


def test_enabling_only_queues_the_backlog_and_returns_at_once(agents, post, web, monkeypatch):
    """With a worker (not eager) the request does not distribute: it queues one task."""
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], enabled=False)
    lead = post()
    queued: list[Any] = []
    monkeypatch.setattr(
        tasks.distribute_waiting_for_rule,
        "apply_async",
        lambda *args, **kwargs: queued.append(kwargs["args"]),
    )

    assert rules_enable(rule_ids=[rule.pk]) == {"enabled": 1}

    assert queued == [[rule.pk]]
    assert Lead.objects.get(pk=lead.pk).status == "unassigned"


def test_a_rule_enabled_by_a_form_queues_its_backlog_after_commit(
    agents, post, web, django_capture_on_commit_callbacks
):
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], enabled=False)
    lead = post()
    rule.enabled = True
    rule.save()
    with django_capture_on_commit_callbacks() as callbacks:
        rule_queue_waiting_leads(rule_id=rule.pk)
    assert Lead.objects.get(pk=lead.pk).owner is None  # nothing before the commit
    for callback in callbacks:
        callback()
    assert Lead.objects.get(pk=lead.pk).owner == a


def test_a_chunk_the_broker_refuses_stays_pending_for_the_sweeper(agents, post, web, monkeypatch):
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], enabled=False)
    lead = post()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.distribute_leads, "apply_async", down)

    assert rules_enable(rule_ids=[rule.pk]) == {"enabled": 1}
    lead.refresh_from_db()
    assert (lead.status, lead.distribution_state) == ("unassigned", "pending")
