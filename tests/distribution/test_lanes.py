"""Lanes: every task of ours goes to the `live`, `timers` or `bulk` queue, a worker started
without -Q consumes them all, and a worker keeps its database connection between tasks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app
from tests.acceptance.test_worker_end_to_end import broker_key, flush_broker, running_worker
from tests.conftest import celery_publishing_to

LIVE, TIMERS, BULK = "live", "timers", "bulk"


def _our_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def _queue_of(name: str) -> str:
    return str(app.amqp.router.route({}, name)["queue"].name)


def test_every_task_of_ours_is_routed_to_a_lane() -> None:
    tasks = _our_tasks()
    assert "distribution.distribute_lead" in tasks  # the autodiscovery really ran
    unrouted = [name for name in tasks if name not in settings.CELERY_TASK_ROUTES]
    assert unrouted == [], "give these tasks a lane in LANE_OF_TASK (config/settings/base.py)"
    assert {name: _queue_of(name) for name in tasks if _queue_of(name) not in settings.LANES} == {}


@pytest.mark.parametrize(
    ("task", "lane"),
    [
        ("distribution.distribute_lead", LIVE),
        ("distribution.expire_offers", TIMERS),
        ("distribution.release_held", TIMERS),
        ("distribution.reassign_missed_sla", TIMERS),
        ("distribution.recheck_windows", TIMERS),
        ("distribution.distribute_leads", BULK),
        ("distribution.distribute_waiting_for_rule", BULK),
        ("distribution.requeue_pending", BULK),
        ("distribution.send_emails", BULK),
    ],
)
def test_each_kind_of_work_has_its_lane(task: str, lane: str) -> None:
    assert _queue_of(task) == lane


def test_a_worker_without_q_consumes_every_lane_and_the_default_queue() -> None:
    consumed = {queue.name for queue in app.amqp.queues.consume_from.values()}
    assert consumed >= {LIVE, TIMERS, BULK, app.conf.task_default_queue}


def test_a_task_published_without_a_route_is_not_stranded() -> None:
    # e.g. a task added later without a lane, or a message from before the lanes existed
    assert _queue_of("someone.elses_task") == app.conf.task_default_queue


# --- with a real worker on Redis ---------------------------------------------------------


def _wait(check: Callable[[], Any], proc: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if proc.poll() is not None:
            break
        time.sleep(0.2)  # polling interval, not a wait for a fixed duration
    log = proc.log.read_text(errors="replace")[-3000:]
    pytest.fail(f"{what} did not happen within {seconds}s; worker log tail:\n{log}")


@pytest.fixture
def lane_worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A plain worker (no -Q) that keeps its connections (CONN_MAX_AGE as in production)."""
    flush_broker()
    with (
        running_worker(
            tmp_path_factory.mktemp("lanes"), hostname="lanes@%h", CONN_MAX_AGE="60"
        ) as proc,
        celery_publishing_to(settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX),
    ):
        yield proc


def _worker_connections() -> list[tuple[int, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        return sorted(cursor.fetchall())


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_plain_worker_serves_every_lane_and_keeps_its_connection(lane_worker: Any) -> None:
    import redis

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (pg_stat_activity); set DATABASE_URL")
    queues = _wait(
        lambda: app.control.inspect(timeout=1).active_queues() or {},
        lane_worker,
        "the worker answering `inspect active_queues`",
    )
    (served,) = queues.values()
    assert {queue["name"] for queue in served} >= {LIVE, TIMERS, BULK}

    broker = redis.Redis.from_url(settings.TEST_REDIS_URL)

    def run(count: int) -> None:
        # one task per lane each round: each reads the database
        for _ in range(count):
            app.send_task("distribution.requeue_pending")  # bulk
            app.send_task("distribution.expire_offers")  # timers
        _wait(
            lambda: (
                all(broker.llen(broker_key(q)) == 0 for q in (LIVE, TIMERS, BULK))
                and broker.hlen(broker_key("unacked")) == 0
            ),
            lane_worker,
            f"the worker running {2 * count} tasks",
        )

    run(10)
    first = _wait(_worker_connections, lane_worker, "the worker's connection showing")
    assert len(first) == 1, first
    run(10)
    assert _worker_connections() == first  # the same backend: not reconnected per task


# --- the topologies that ship ------------------------------------------------------------


def _queues_of(command: list[str] | str) -> set[str]:
    words = command.split() if isinstance(command, str) else command
    for i, word in enumerate(words):
        if word in ("-Q", "--queues"):
            return set(words[i + 1].split(","))
        if word.startswith("--queues="):
            return set(word.partition("=")[2].split(","))
    return {queue.name for queue in app.amqp.queues.consume_from.values()}  # no -Q: all


def test_docker_compose_gives_every_lane_a_worker() -> None:
    import yaml

    compose = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())
    workers = {
        name: _queues_of(service["command"])
        for name, service in compose["services"].items()
        if " worker" in service.get("command", "")
    }
    served = set().union(*workers.values())
    assert served >= {*settings.LANES, app.conf.task_default_queue}
    assert all(len(queues) < len(served) for queues in workers.values()), workers


def test_the_embedded_run_gives_every_lane_a_worker() -> None:
    from distribution.management.commands.run_embedded import Command

    commands = Command().commands("127.0.0.1", 8000)
    workers = [_queues_of(command) for command in commands.values() if "worker" in command]
    assert len(workers) == len(settings.LANES)
    assert set().union(*workers) >= {*settings.LANES, app.conf.task_default_queue}


@pytest.fixture
def live_only_worker(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A worker of the live lane only (`-Q live`), publishing and consuming on Redis."""
    flush_broker()
    with (
        celery_publishing_to(settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX),
        running_worker(tmp_path_factory.mktemp("live"), "-Q", LIVE, hostname="live@%h") as proc,
    ):
        yield proc


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_live_lead_is_distributed_while_bulk_work_waits_in_its_own_lane(
    api: Any, live_only_worker: Any
) -> None:
    import redis

    from leads.models import Lead
    from tests.factories import SourceFactory

    broker = redis.Redis.from_url(settings.TEST_REDIS_URL)
    backlog = 300
    for _ in range(backlog):  # a bulk backlog ahead of the live lead
        app.send_task("distribution.requeue_pending")
    assert broker.llen(broker_key(BULK)) == backlog
    source = SourceFactory()

    response = api.post(
        "/api/v1/leads",
        {"first_name": "Lane", "email": "lane@example.com"},
        token=source.plain_token,
    )

    assert response.status_code == 201
    lead_id = response.json()["id"]
    _wait(
        lambda: (
            Lead.objects.values_list("status", flat=True).get(pk=lead_id) != "new"
            and Lead.objects.values_list("distribution_state", flat=True).get(pk=lead_id)
            != "pending"
        ),
        live_only_worker,
        "the live worker distributing the posted lead",
    )
    assert (
        broker.llen(broker_key(BULK)) == backlog
    )  # not one bulk task ran before (or instead of) it
