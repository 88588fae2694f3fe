"""`/healthz` reports the pipeline's lag: the oldest pending lead, the oldest due timer and
each queue's depth, and answers 503 naming which one is past its threshold."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.test import override_settings
from kombu import Connection

from config.pipeline import UNKNOWN, queue_depths, queue_names
from distribution.models import DistributionWindow, Offer
from tests.conftest import celery_publishing_to
from tests.factories import AgentFactory, LeadFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def _offer(lead, *, expires_at):
    return Offer.objects.create(lead=lead, agent=AgentFactory(), expires_at=expires_at)


def test_healthz_answers_200_with_the_lag_figures(client, django_assert_max_num_queries):
    with time_machine.travel(T0, tick=False):
        LeadFactory()  # pending since T0
        offered = LeadFactory(status="offered", distribution_state="active")
        _offer(offered, expires_at=T0 + dt.timedelta(minutes=5))  # not due yet
    with time_machine.travel(T0 + dt.timedelta(seconds=42), tick=False):
        with django_assert_max_num_queries(3):  # SELECT 1, pending, timers (one UNION)
            response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["errors"] == {}
    assert body["checks"] == {"database": "ok", "broker": "ok"}
    pipeline = body["pipeline"]
    assert pipeline["pending"] == {"count": 1, "oldest_age_s": 42.0, "max_age_s": 120.0}
    assert pipeline["timers"]["oldest"] is None
    assert pipeline["timers"]["due"]["offer"] == {"count": 0, "lag_s": None}
    assert pipeline["queues"]["max_depth"] == 10000
    assert isinstance(pipeline["queues"]["depth"]["celery"], int)  # the embedded broker


def test_healthz_answers_503_naming_pending_past_the_threshold(client):
    with time_machine.travel(T0, tick=False):
        LeadFactory()
    with time_machine.travel(T0 + dt.timedelta(seconds=119), tick=False):
        assert client.get("/healthz").status_code == 200
    with time_machine.travel(T0 + dt.timedelta(seconds=121), tick=False):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"] == {"database": "ok", "broker": "ok"}  # both still answer
    assert set(body["errors"]) == {"pending"}
    assert "121 s" in body["errors"]["pending"]


def test_healthz_answers_503_naming_an_overdue_offer_past_the_lag_threshold(client):
    with time_machine.travel(T0, tick=False):
        lead = LeadFactory(status="offered", distribution_state="active")
        _offer(lead, expires_at=T0 - dt.timedelta(seconds=29))
        assert client.get("/healthz").status_code == 200  # late, but within 30 s
        _offer(lead, expires_at=T0 - dt.timedelta(seconds=31))
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert set(body["errors"]) == {"timers"}
    assert "offer" in body["errors"]["timers"] and "31 s overdue" in body["errors"]["timers"]
    assert body["pipeline"]["timers"]["oldest"] == {"kind": "offer", "lag_s": 31.0}
    assert body["pipeline"]["timers"]["due"]["offer"] == {"count": 2, "lag_s": 31.0}


def test_every_kind_of_timer_row_counts_and_the_oldest_is_named(client):
    with time_machine.travel(T0, tick=False):
        LeadFactory(
            status="held", distribution_state="active", held_until=T0 - dt.timedelta(seconds=50)
        )
        LeadFactory(assigned=True, owner=AgentFactory(), sla_due_at=T0 - dt.timedelta(seconds=10))
        window_lead = LeadFactory(status="distributed", distribution_state="active")
        DistributionWindow.objects.create(
            lead=window_lead,
            ends_at=T0 + dt.timedelta(hours=1),
            every=dt.timedelta(minutes=5),
            next_check_at=T0 - dt.timedelta(seconds=5),
        )
        offered = LeadFactory(status="offered", distribution_state="active")
        closed = _offer(offered, expires_at=T0 - dt.timedelta(hours=1))
        Offer.objects.filter(pk=closed.pk).update(status="expired")  # a closed offer: no timer
        response = client.get("/healthz")

    body = response.json()
    due = body["pipeline"]["timers"]["due"]
    assert due == {
        "offer": {"count": 0, "lag_s": None},
        "held": {"count": 1, "lag_s": 50.0},
        "sla": {"count": 1, "lag_s": 10.0},
        "window": {"count": 1, "lag_s": 5.0},
    }
    assert body["pipeline"]["timers"]["oldest"] == {"kind": "held", "lag_s": 50.0}
    assert response.status_code == 503 and "held lead" in body["errors"]["timers"]


@override_settings(HEALTH_MAX_PENDING_AGE=5, HEALTH_MAX_TIMER_LAG=600)
def test_the_thresholds_come_from_settings(client):
    with time_machine.travel(T0, tick=False):
        lead = LeadFactory()
        _offer(lead, expires_at=T0 - dt.timedelta(seconds=300))
    with time_machine.travel(T0 + dt.timedelta(seconds=6), tick=False):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert set(response.json()["errors"]) == {"pending"}  # the offer is within 600 s


def test_queue_names_follow_the_routes_and_lanes_settings():
    assert queue_names()[0] == (getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery")
    routes = {
        "distribution.tasks.routing.distribute_lead": {"queue": "live"},
        "distribution.tasks.routing.expire_offers": {"queue": "timers"},
        "leads.tasks.*": "bulk",
    }
    with override_settings(CELERY_TASK_ROUTES=routes, LANES=["live", "timers", "bulk"]):
        assert queue_names() == ["celery", "bulk", "live", "timers"]
    with override_settings(CELERY_TASK_ROUTES={}, CELERY_TASK_QUEUES=None, LANES=None):
        assert queue_names() == ["celery"]


def test_filesystem_broker_depth_counts_the_message_files_per_queue(tmp_path: Path):
    options = {
        "data_folder_in": str(tmp_path / "q"),
        "data_folder_out": str(tmp_path / "q"),
        "processed_folder": str(tmp_path / "done"),
    }
    for sub in ("q", "done"):
        (tmp_path / sub).mkdir()
    with Connection("filesystem://", transport_options=options) as conn:
        for name, n in (("live", 3), ("bulk", 5)):
            queue = conn.SimpleQueue(name)
            for i in range(n):
                queue.put({"n": i})
            queue.close()
        assert queue_depths(conn, ["celery", "live", "bulk"]) == {"celery": 0, "live": 3, "bulk": 5}


def test_an_unknown_transport_reports_unknown_depths():
    with Connection("memory://") as conn:
        assert queue_depths(conn, ["celery", "live"]) == {"celery": UNKNOWN, "live": UNKNOWN}


@pytest.mark.redis
def test_queue_depth_is_read_from_a_real_redis(client):
    from tests.acceptance.test_worker_end_to_end import flush_broker

    url, prefix = settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX
    flush_broker()  # this run's keys only: other runs share the Redis
    try:
        with celery_publishing_to(url, prefix) as app:
            for _ in range(25):
                app.send_task("health.probe", queue="celery")
            for priority in (0, 6, 9):  # kombu keeps each priority step in its own list
                app.send_task("health.probe", queue="live", priority=priority)
            response = client.get("/healthz")
            assert response.status_code == 200
            depth = response.json()["pipeline"]["queues"]["depth"]
            assert (depth["celery"], depth["live"]) == (25, 3)
            assert all(depth[lane] == 0 for lane in settings.LANES if lane != "live")

            with override_settings(HEALTH_MAX_QUEUE_DEPTH=20):
                late = client.get("/healthz")
    finally:
        flush_broker()

    assert late.status_code == 503
    assert set(late.json()["errors"]) == {"queues"}
    assert "celery holds 25" in late.json()["errors"]["queues"]


def test_a_broken_database_reports_no_lag_but_names_the_database(client, monkeypatch):
    from config import health

    monkeypatch.setattr(health, "_check_database", lambda: "connection refused")
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "error", "broker": "ok"}
    assert response.json()["pipeline"] is None
