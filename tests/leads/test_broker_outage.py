"""A broker outage costs a POST nothing (issue 10 item 1): the lead is saved and answered,
stays pending for the sweeper, and the publish is tried once, with no retry loop inside the
request."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from celery.signals import before_task_publish
from django.utils import timezone

from distribution.tasks import requeue_pending
from leads.models import Lead
from tests.conftest import celery_publishing_to

pytestmark = pytest.mark.django_db
LEADS = "/api/v1/leads"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempt to open a socket to a Redis server."""
    import redis.connection

    attempts: list[Any] = []
    real = redis.connection.Connection._connect

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(self.port)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, "_connect", spy)
    return attempts


def test_with_the_broker_unreachable_a_post_answers_201_after_one_publish_attempt(
    api, source, closed_port, connects, django_capture_on_commit_callbacks
):
    with (
        celery_publishing_to(f"redis://127.0.0.1:{closed_port}/0"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api.post(
            LEADS, {"first_name": "Otto", "email": "o@example.com"}, token=source.plain_token
        )

    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    lead = Lead.objects.get(pk=response.json()["id"])
    assert (lead.status, lead.distribution_state) == ("pending", "pending")
    assert connects == [closed_port]  # one attempt: no retry policy, no reconnect loop


def test_a_late_sweep_is_dropped_rather_than_run():
    published: list[dict[str, Any]] = []

    def record(headers: dict[str, Any], **_: Any) -> None:
        published.append(headers)

    before_task_publish.connect(record, weak=False)
    try:
        with celery_publishing_to("memory://"):
            sent_at = timezone.now()
            requeue_pending.apply_async()  # as Beat sends it
    finally:
        before_task_publish.disconnect(record)

    (headers,) = published
    assert headers["task"] == "distribution.requeue_pending"
    expires = datetime.fromisoformat(headers["expires"])
    # a worker discards it once it is older than the next sweep's turn (Beat: every 30 s)
    assert sent_at < expires <= sent_at + timedelta(seconds=30)
