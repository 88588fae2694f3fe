"""Concurrent repeats of one (source, external_id) collapse into one lead (PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from leads.models import Lead
from tests.conftest import JsonClient
from tests.factories import SourceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20


def _post_together(bodies: list[dict[str, Any]], token: str) -> list[tuple[int, int]]:
    """POST every body from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> tuple[int, int]:
        try:
            api = JsonClient(Client(), token)
            barrier.wait(timeout=30)
            response = api.post("/api/v1/leads", body)
            return response.status_code, response.json().get("id")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_concurrent_repeats_of_one_external_id_make_exactly_one_lead():
    source = SourceFactory()
    body = {"first_name": "Rita", "email": "rita@example.com", "external_id": "vendor-42"}

    answers = _post_together([dict(body) for _ in range(THREADS)], source.plain_token)

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * (THREADS - 1) + [201], answers
    assert len({lead_id for _, lead_id in answers}) == 1
    assert Lead.objects.filter(source=source, external_id="vendor-42").count() == 1
    # and the one lead was distributed once, whoever won
    lead = Lead.objects.get()
    assert lead.status == "unassigned"
    assert lead.distribution_attempts.count() == 1


def test_concurrent_distinct_leads_are_all_kept():
    source = SourceFactory()
    bodies = [
        {"first_name": f"Lead {i}", "email": f"l{i}@example.com", "external_id": f"vendor-{i}"}
        for i in range(THREADS)
    ]

    answers = _post_together(bodies, source.plain_token)

    assert [status for status, _ in answers] == [201] * THREADS
    assert Lead.objects.filter(source=source).count() == THREADS
