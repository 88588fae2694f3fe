"""`GET /healthz`: 200 when the database and the broker answer, 503 naming what failed."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from config.celery import app as celery_app


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return str(exc) or exc.__class__.__name__
    return None


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            # one immediate retry: a probe must answer (and name the failure) within ~1 s
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:  # kombu raises many kinds; all mean "down"
        return str(exc) or exc.__class__.__name__
    return None


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report the database and the broker; 503 if either fails."""
    failures = {
        name: err
        for name, err in (("database", _check_database()), ("broker", _check_broker()))
        if err
    }
    checks = {name: ("error" if name in failures else "ok") for name in ("database", "broker")}
    status = 503 if failures else 200
    return JsonResponse(
        {"status": "ok" if not failures else "error", "checks": checks, "errors": failures},
        status=status,
    )
