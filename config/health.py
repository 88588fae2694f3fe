"""`GET /healthz`: 200 when the database and the broker answer, 503 naming what failed.

Beyond the two answers it reports the pipeline's lag (`pipeline`): the oldest pending
lead's age, the oldest due timer and each queue's depth, and answers 503 naming `pending`,
`timers` or `queues` past the HEALTH_MAX_* settings — a worker that has fallen behind is a
failure a monitor must see, even though every server still answers (3 queries).
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.celery import app as celery_app
from config.pipeline import Depth, queue_depths


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return str(exc) or exc.__class__.__name__
    return None


def _check_broker() -> tuple[str | None, dict[str, Depth] | None]:
    """(the broker's failure or None, each queue's depth when it answered)."""
    try:
        with celery_app.connection_for_write() as conn:
            # one immediate retry: a probe must answer (and name the failure) within ~1 s
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            return None, queue_depths(conn)
    except Exception as exc:  # kombu raises many kinds; all mean "down"
        return str(exc) or exc.__class__.__name__, None


def broker_queue_depths() -> dict[str, Depth] | None:
    """Each queue's depth, or None when the broker does not answer (for the dashboard)."""
    return _check_broker()[1]


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report the database, the broker and the pipeline's lag; 503 if any fails."""
    from distribution.selectors.pipeline import pipeline_report

    database_error = _check_database()
    broker_error, depths = _check_broker()
    failures = {
        name: err for name, err in (("database", database_error), ("broker", broker_error)) if err
    }
    checks = {name: ("error" if name in failures else "ok") for name in ("database", "broker")}
    body: dict[str, Any] = {"checks": checks}
    if database_error is None:
        pipeline, late = pipeline_report(now=timezone.now(), depths=depths)
        failures.update(late)
        body["pipeline"] = pipeline
    else:
        body["pipeline"] = None
    status = 503 if failures else 200
    return JsonResponse(
        {"status": "ok" if not failures else "error", **body, "errors": failures},
        status=status,
    )
