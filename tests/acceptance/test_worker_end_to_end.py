"""End to end with a real Celery worker on Redis: a posted lead is distributed by the worker,
and a lead posted while the broker is down is picked up later by the sweeper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from distribution.models import DistributionAttempt
from distribution.tasks import requeue_pending
from leads.models import Lead
from tests.conftest import celery_publishing_to
from tests.factories import SourceFactory

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def flush_broker() -> None:
    """Empty this run's queues on the test Redis (its key prefix only: other runs share it)."""
    import redis

    broker = redis.Redis.from_url(settings.TEST_REDIS_URL)
    keys = list(broker.scan_iter(match=f"{settings.TEST_BROKER_KEY_PREFIX}*", count=1000))
    if keys:
        broker.delete(*keys)


def broker_key(name: str) -> str:
    """The Redis key of queue (or hash) NAME for this run's workers."""
    return f"{settings.TEST_BROKER_KEY_PREFIX}{name}"


@contextmanager
def running_worker(
    log_dir: Path, *args: str, hostname: str = "e2e@%h", **env_extra: str
) -> Iterator[Any]:
    """A real `celery worker` process on the test database and the test Redis broker; with
    no `-Q` in ARGS it serves every lane (DESIGN §8). Its keys on the shared Redis are this
    run's (TEST_BROKER_KEY_PREFIX). Stopped (its process group) on exit."""
    log = log_dir / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.TEST_REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "BROKER_KEY_PREFIX": settings.TEST_BROKER_KEY_PREFIX,
        **env_extra,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname={hostname}",
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc.log = log  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        flush_broker()  # leave no keys of this run behind on the shared Redis


@pytest.fixture(scope="module")
def worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real `celery worker` process (every lane) on the test database and the test Redis
    broker."""
    flush_broker()
    with running_worker(tmp_path_factory.mktemp("worker")) as proc:
        yield proc


@pytest.fixture
def redis_broker(worker: Any) -> Iterator[Any]:
    """This process publishes to the same Redis the worker consumes from."""
    with celery_publishing_to(settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX) as app:
        yield app


def wait_for(check: Callable[[], bool], worker: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        if worker.poll() is not None:
            break
        time.sleep(0.1)  # polling interval, not a wait for a fixed duration
    log = worker.log.read_text(errors="replace")[-4000:]
    pytest.fail(
        f"{what} did not happen within {WAIT_SECONDS}s "
        f"(worker exit code {worker.poll()}); worker log tail:\n{log}"
    )


def status_of(lead_id: int) -> str:
    return Lead.objects.values_list("status", flat=True).get(pk=lead_id)


def test_the_worker_distributes_a_posted_lead(api, redis_broker, worker):
    source = SourceFactory()

    response = api.post(
        "/api/v1/leads",
        {"first_name": "Wendy", "email": "w@example.com", "external_id": "e2e-1"},
        token=source.plain_token,
    )

    assert response.status_code == 201
    lead_id = response.json()["id"]
    wait_for(
        lambda: status_of(lead_id) == "unassigned",
        worker,
        "the worker moving the lead to unassigned",
    )
    attempt = DistributionAttempt.objects.get(lead_id=lead_id)
    assert (attempt.outcome, attempt.trigger) == ("no_rule_matched", "arrival")
    assert api.get(f"/api/v1/leads/{lead_id}", token=source.plain_token).json()["status"] == (
        "unassigned"
    )


def test_a_lead_posted_while_the_broker_is_down_is_saved_and_requeued_by_the_sweeper(
    api, closed_port, worker
):
    source = SourceFactory()
    with celery_publishing_to(f"redis://127.0.0.1:{closed_port}/0"):
        response = api.post(
            "/api/v1/leads",
            {"first_name": "Otto", "email": "o@example.com", "external_id": "e2e-outage"},
            token=source.plain_token,
        )

    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    lead_id = response.json()["id"]
    assert Lead.objects.get(pk=lead_id).distribution_state == "pending"

    with celery_publishing_to(settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX):
        assert requeue_pending() == 0  # inside the grace period: nothing re-queued yet
        with time_machine.travel(timezone.now() + timedelta(minutes=2)):
            assert requeue_pending() == 1  # the sweeper Beat runs, once the broker is back

    wait_for(
        lambda: status_of(lead_id) == "unassigned",
        worker,
        "the worker distributing the re-queued lead",
    )
    attempt = DistributionAttempt.objects.get(lead_id=lead_id)
    assert (attempt.outcome, attempt.trigger) == ("no_rule_matched", "sweeper")
