"""The telephony webhook's retry under a real Celery worker on Redis: a 503 is retried by
the broker after its backoff (not in process), signed again, and both attempts are logged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from distribution.models import WebhookAttempt
from distribution.services.notify import WEBHOOK_RETRY_AFTER
from distribution.tasks.routing import send_webhook
from leads.models import Lead
from tests.acceptance import test_worker_end_to_end as e2e
from tests.conftest import celery_publishing_to
from tests.factories import SourceFactory
from tests.routing.test_notifications import Receiver, receiver_verifies

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
SECRET = "whsec-worker-test"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    receiver = Receiver([503, 204])
    yield receiver
    receiver.stop()


def test_a_503_is_retried_by_the_worker_after_its_backoff(hook, tmp_path):
    e2e.flush_broker()
    lead = Lead.objects.create(source=SourceFactory(slug="e2e-hook"), email="ring@example.com")
    env = {"NOTIFY_WEBHOOK_URL": hook.url, "NOTIFY_WEBHOOK_SECRET": SECRET}
    with e2e.running_worker(tmp_path, hostname="hook@%h", **env) as worker:
        with celery_publishing_to(settings.TEST_REDIS_URL, settings.TEST_BROKER_KEY_PREFIX):
            send_webhook.apply_async(
                args=[{"id": "evt-1", "event": "offer", "lead": {"id": lead.pk, "pin": "1234"}}]
            )
        e2e.wait_for(
            lambda: WebhookAttempt.objects.filter(lead=lead, outcome="delivered").exists(),
            worker,
            "the worker retrying the webhook after a 503",
        )
    assert list(
        WebhookAttempt.objects.filter(lead=lead)
        .order_by("attempt")
        .values_list("attempt", "status_code", "outcome")
    ) == [(1, 503, "retrying"), (2, 204, "delivered")]
    first, second = WebhookAttempt.objects.filter(lead=lead).order_by("attempt")
    assert (second.created_at - first.created_at).total_seconds() >= WEBHOOK_RETRY_AFTER - 0.5
    assert len(hook.requests) == 2
    assert all(receiver_verifies(h, b, SECRET) for h, b in hook.requests)
    assert {h["Idempotency-Key"] for h, _ in hook.requests} == {"evt-1"}
