"""Shared fixtures: factories, tokens, an API client, and the real-server markers.

Tests marked `postgres` need PostgreSQL (row locks); `redis` need a Redis broker and start a
real Celery worker; `browser` drive Debian's chromium. Each is skipped with a message saying
what is missing, never silently.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tests.factories import AgentFactory, SourceFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _redis_address(url: str) -> tuple[str, int]:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    return host or "127.0.0.1", int(port or 6379)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which database and broker this run uses (chosen by DATABASE_URL, never guessed)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if "postgresql" in db["ENGINE"]:
        where = f"PostgreSQL {db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
        database = f"{where}/{db['NAME']} (test database {db['TEST']['NAME']})"
    else:
        database = f"SQLite {db['NAME']} (PostgreSQL tests skipped; set DATABASE_URL)"
    redis_url = settings.TEST_REDIS_URL
    reachable = _reachable(*_redis_address(redis_url))
    broker = f"Redis {redis_url}" + ("" if reachable else " unreachable: Redis tests skipped")
    eager = "in process (eager)" if settings.CELERY_TASK_ALWAYS_EAGER else "via the broker"
    return [
        f"database: {database}",
        f"broker for end-to-end tests: {broker}; unit-test tasks run {eager}",
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    vendor = settings.DATABASES["default"]["ENGINE"]
    no_pg = "postgresql" not in vendor
    redis_url = settings.TEST_REDIS_URL
    no_redis = not _reachable(*_redis_address(redis_url))
    no_browser = not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM))
    for item in items:
        if no_pg and (item.get_closest_marker("postgres") or item.get_closest_marker("redis")):
            item.add_marker(
                pytest.mark.skip(
                    reason="needs PostgreSQL (set DATABASE_URL; make test uses 127.0.0.1:5432)"
                )
            )
        elif no_redis and item.get_closest_marker("redis"):
            item.add_marker(pytest.mark.skip(reason=f"needs Redis at {redis_url}"))
        if no_browser and item.get_closest_marker("browser"):
            item.add_marker(
                pytest.mark.skip(reason=f"needs chromium at {CHROMIUM} (apt install chromium)")
            )


@pytest.fixture(scope="session", autouse=True)
def _celery_configured() -> None:
    """Celery reads its configuration from Django's settings once, at first use: read it
    before any test overrides a CELERY_ setting, so no test leaves the app with its values."""
    from config.celery import app

    assert app.conf.task_routes is not None


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


class JsonClient:
    """The Django test client speaking JSON with a bearer token."""

    def __init__(self, client: Client, token: str | None = None):
        self.client, self.token = client, token

    def _headers(self, token: str | None) -> dict[str, str]:
        token = token if token is not None else self.token
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def get(self, path: str, token: str | None = None) -> Any:
        return self.client.get(path, **self._headers(token))

    def post(self, path: str, body: Any = None, token: str | None = None) -> Any:
        return self.client.post(
            path,
            data=json.dumps(body if body is not None else {}),
            content_type="application/json",
            **self._headers(token),
        )


@pytest.fixture
def api(client: Client) -> JsonClient:
    return JsonClient(client)


@pytest.fixture
def source(db: None) -> Any:
    """A source with a known plain token at `source.plain_token`."""
    return SourceFactory()


@pytest.fixture
def agent(db: None) -> Any:
    """An agent User (with profile) with `plain_token` and password 'pw'."""
    return AgentFactory()


def free_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    return free_port()


def _reset_celery_pools(app: Any) -> None:
    # the app caches its connection and producer pools per broker; drop the references (not
    # the pools: kombu's registry hands them out again) so the next publish uses the broker
    # configured now
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


@contextmanager
def celery_publishing_to(url: str, key_prefix: str = "") -> Iterator[Any]:
    """Within the block the in-process Celery app really publishes to the broker at URL
    (not eagerly), as a web process does in production; KEY_PREFIX: Redis's keys under it."""
    from config.celery import app

    keys = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {key: app.conf[key] for key in keys}
    _reset_celery_pools(app)
    app.conf.update(
        broker_url=url,
        task_always_eager=False,
        broker_transport_options={
            "visibility_timeout": 3600,
            **({"global_keyprefix": key_prefix} if key_prefix else {}),
        },
    )
    try:
        yield app
    finally:
        _reset_celery_pools(app)
        app.conf.update(saved)
