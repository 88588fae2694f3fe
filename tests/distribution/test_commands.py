"""The operational commands: distribute_pending, seed_demo, setup_periodic_tasks."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.celery import app as celery_app
from distribution.models import DistributionAttempt
from distribution.periodic import PERIODIC_TASKS
from leads.models import Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


# --- distribute_pending ------------------------------------------------------------------


def test_distribute_pending_distributes_every_pending_lead_once():
    pending = LeadFactory.create_batch(3)
    done = LeadFactory(unassigned=True)

    output = run("distribute_pending", "--quiet")

    assert "3 lead(s) processed: 3 no rule matched." in output
    for lead in pending:
        lead.refresh_from_db()
        assert (lead.status, lead.distribution_state) == ("unassigned", "done")
        attempt = DistributionAttempt.objects.get(lead=lead)
        assert (attempt.trigger, attempt.outcome) == ("command", "no_rule_matched")
    assert not DistributionAttempt.objects.filter(lead=done).exists()

    again = run("distribute_pending", "--quiet")

    assert "0 lead(s) processed." in again
    assert DistributionAttempt.objects.count() == 3


# --- seed_demo ---------------------------------------------------------------------------


def test_seed_demo_creates_a_realistic_demo_once():
    output = run("seed_demo")

    leads = Lead.objects.select_related("source", "campaign")
    assert 200 <= leads.count() <= 1000
    assert "Demo leads: " in output
    assert leads.values("source").distinct().count() >= 3
    assert leads.exclude(campaign=None).values("campaign").distinct().count() >= 3
    # realistic names: real first and last names, no placeholders or numbering
    names = list(leads.values_list("first_name", "last_name"))
    assert all(first and last for first, last in names)
    assert not any(re.search(r"\d|test|lead", f"{first} {last}", re.I) for first, last in names)
    assert len({first for first, _ in names}) >= 10
    assert len({last for _, last in names}) >= 10
    assert leads.filter(email__contains="@").count() == leads.count()
    # the demo is distributed, so the queues have something in them
    assert not leads.filter(status="pending").exists()
    # agents can sign in with the documented demo password
    from django.contrib.auth import authenticate

    assert authenticate(username="ava@demo.leadrouter.local", password="demo-agent")
    count = leads.count()

    again = run("seed_demo")

    assert "none added" in again
    assert Lead.objects.count() == count


# --- setup_periodic_tasks ----------------------------------------------------------------


def test_setup_periodic_tasks_is_idempotent_and_keeps_other_tasks():
    every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="A manager's own task", task="x.y", interval=every_hour)
    names = {p.name for p in PERIODIC_TASKS}

    first = run("setup_periodic_tasks")
    second = run("setup_periodic_tasks")

    assert f"{len(names)} created, 0 up to date" in first
    assert f"0 created, {len(names)} up to date" in second
    ours = PeriodicTask.objects.filter(name__in=names)
    assert ours.count() == len(names)
    assert all(task.enabled for task in ours)
    assert PeriodicTask.objects.filter(name="A manager's own task").exists()
    sweeper = PeriodicTask.objects.get(task="distribution.requeue_pending")
    assert sweeper.interval.period == IntervalSchedule.SECONDS
    assert sweeper.interval.every <= 60


def test_setup_periodic_tasks_keeps_a_task_a_manager_disabled():
    run("setup_periodic_tasks")
    paused = PERIODIC_TASKS[0].name
    PeriodicTask.objects.filter(name=paused).update(
        enabled=False,
        interval=IntervalSchedule.objects.create(every=999, period=IntervalSchedule.SECONDS),
    )

    out = run("setup_periodic_tasks")

    assert f"0 created, {len(PERIODIC_TASKS)} up to date" in out
    task = PeriodicTask.objects.get(name=paused)
    assert task.enabled is False  # the manager's pause survives
    assert task.interval.every == PERIODIC_TASKS[0].every_seconds  # the schedule is ours
    others = PeriodicTask.objects.filter(name__in=[p.name for p in PERIODIC_TASKS[1:]])
    assert all(t.enabled for t in others)


def test_every_periodic_task_names_a_task_the_worker_knows():
    celery_app.loader.import_default_modules()
    for periodic in PERIODIC_TASKS:
        assert periodic.task in celery_app.tasks, periodic
