"""Imported rows wait in the bulk lane (issue 10, lanes): a 20,000-row import never sits in
front of a live lead, which keeps the live lane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from distribution import tasks
from tests.factories import CampaignFactory, SourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.distribute_lead, "apply_async", lambda *args, **options: calls.append(options)
    )
    return calls


def test_csv_rows_are_queued_in_the_bulk_lane_and_api_leads_in_their_own(
    tmp_path: Path, published, django_capture_on_commit_callbacks, api
):
    CampaignFactory(slug="solar")
    source = SourceFactory(slug="vendor-x")
    path = tmp_path / "leads.csv"
    path.write_text("First Name,E-mail,Campaign\nJane,jane@example.com,solar\nJo,jo@example.com,\n")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_leads", str(path), "--source", "vendor-x")
    assert [call.get("queue") for call in published] == ["bulk", "bulk"]

    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/leads", {"email": "live@example.com"}, token=source.plain_token
        )
    assert response.status_code == 201
    assert len(published) == 1 and "queue" not in published[0]  # the task's own lane: live
