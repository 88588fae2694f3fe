"""The pending sweeper cannot amplify (issue 10 item 5): each lead is queued at most once per
visibility window however often the sweeper runs, a lead in flight is left alone, leads
imported with --no-distribute wait until asked, and a lead added in the admin is queued on
commit like one posted to the API."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from distribution import tasks
from distribution.models import DistributionAttempt
from distribution.services.rules import rules_enable
from distribution.tasks import requeue_pending
from leads.models import Lead
from tests.factories import SourceFactory
from tests.routing.conftest import make_pool, make_rule

LATER = timedelta(minutes=2)  # past the sweeper's grace period (the visibility window)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """Lead ids published as `distribute_lead` tasks, counted (nothing runs)."""
    counts: Counter[int] = Counter()
    lanes: dict[int, str] = {}
    counts.lanes = lanes  # type: ignore[attr-defined]  # the lane each was published to
    lock = threading.Lock()

    def spy(*args: Any, **kwargs: Any) -> None:
        with lock:
            counts[kwargs["args"][0]] += 1
            lanes[kwargs["args"][0]] = kwargs.get("queue") or "live"

    monkeypatch.setattr(tasks.distribute_lead, "apply_async", spy)
    return counts


def make_pending(n: int) -> list[int]:
    leads = Lead.objects.bulk_create(Lead(email=f"p{i}@example.com") for i in range(n))
    return [lead.pk for lead in leads]


@pytest.mark.django_db
def test_the_sweeper_requeues_each_lead_into_its_own_lane(published):
    live = Lead.objects.create(email="live@example.com")
    imported = Lead.objects.create(email="row@example.com", lane="bulk")

    with time_machine.travel(timezone.now() + LATER):
        assert requeue_pending() == 2

    assert published.lanes == {live.pk: "live", imported.pk: "bulk"}  # type: ignore[attr-defined]


@pytest.mark.postgres
@pytest.mark.django_db
def test_fifty_sweeps_back_to_back_queue_each_of_1000_pending_leads_once(published):
    ids = make_pending(1000)

    with time_machine.travel(timezone.now() + LATER):
        runs = [requeue_pending() for _ in range(50)]

    assert runs[0] == 1000 and set(runs[1:]) == {0}
    assert set(published) == set(ids)
    assert max(published.values()) == 1  # 1,000 messages, not 50,000
    # a window later the leads still pending are queued once more, and again only once
    with time_machine.travel(timezone.now() + 2 * LATER):
        runs = [requeue_pending() for _ in range(50)]
    assert runs[0] == 1000 and set(runs[1:]) == {0}
    assert set(published.values()) == {2}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_queue_each_lead_once(published):
    ids = make_pending(400)
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            for _ in range(10):
                requeue_pending()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    with time_machine.travel(timezone.now() + LATER):
        threads = [threading.Thread(target=sweep) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert errors == []
    assert set(published) == set(ids)
    assert max(published.values()) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lead_a_worker_is_distributing_is_not_requeued(published):
    in_flight, stale = make_pending(2)
    locked, release = threading.Event(), threading.Event()

    def worker() -> None:  # holds the lead's row as a distributing worker does
        try:
            with transaction.atomic():
                Lead.objects.select_for_update().get(pk=in_flight)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(30)
        with time_machine.travel(timezone.now() + LATER):
            assert requeue_pending() == 1
    finally:
        release.set()
        thread.join()

    assert dict(published) == {stale: 1}


@pytest.mark.django_db
def test_a_lead_queued_within_the_window_is_not_queued_again(published):
    (lead_id,) = make_pending(1)
    with time_machine.travel(timezone.now() + LATER):
        assert requeue_pending() == 1
    with time_machine.travel(timezone.now() + LATER + timedelta(seconds=30)):
        assert requeue_pending() == 0  # its message is still in flight
    assert dict(published) == {lead_id: 1}


# --- import_leads --no-distribute --------------------------------------------------------


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text("first_name,email,city\nAda,ada@example.com,Delft\nBob,bob@example.com,Delft\n")
    return path


def _import_without_distribution(csv_file: Path) -> list[Lead]:
    call_command("import_leads", str(csv_file), "--source", "vendor", "--no-distribute")
    return list(Lead.objects.order_by("id"))


@pytest.mark.django_db
def test_leads_imported_with_no_distribute_stay_undistributed_after_sweeps(csv_file):
    SourceFactory(slug="vendor")
    leads = _import_without_distribution(csv_file)

    with time_machine.travel(timezone.now() + LATER):
        assert requeue_pending() == 0  # eager Celery: a queued lead would be routed here
    with time_machine.travel(timezone.now() + 10 * LATER):
        assert requeue_pending() == 0

    assert [lead.status for lead in Lead.objects.order_by("id")] == ["pending", "pending"]
    assert not DistributionAttempt.objects.filter(lead__in=leads).exists()


@pytest.mark.django_db
def test_distribute_pending_distributes_leads_imported_with_no_distribute(csv_file):
    SourceFactory(slug="vendor")
    leads = _import_without_distribution(csv_file)

    call_command("distribute_pending", "--quiet")

    assert [lead.status for lead in Lead.objects.order_by("id")] == ["unassigned", "unassigned"]
    assert DistributionAttempt.objects.filter(lead__in=leads).count() == 2
    with time_machine.travel(timezone.now() + LATER):
        assert requeue_pending() == 0  # nothing left for the sweeper


@pytest.mark.django_db
def test_enabling_a_matching_rule_distributes_leads_imported_with_no_distribute(csv_file, agents):
    vendor = SourceFactory(slug="vendor")
    leads = _import_without_distribution(csv_file)
    (ann,) = agents(1)
    rule = make_rule(pool=make_pool([ann]), sources=[vendor], enabled=False)

    rules_enable(rule_ids=[rule.pk])

    assert {lead.owner_id for lead in Lead.objects.filter(pk__in=[x.pk for x in leads])} == {ann.pk}


# --- the admin ---------------------------------------------------------------------------


class _FormFields(HTMLParser):
    """The values an unchanged admin form would post: inputs (hidden ones included),
    selects' selected options, textareas."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "checkbox"):
            self.values[name] = a.get("value", "")
        elif tag == "input" and name and "checked" in a:
            self.values[name] = a.get("value", "on")
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


@pytest.mark.django_db
def test_a_lead_added_in_the_admin_is_queued_on_commit(
    admin_client, published, django_capture_on_commit_callbacks
):
    add = "/admin/leads/lead/add/"
    form = _FormFields()
    form.feed(admin_client.get(add).content.decode())
    data = {k: v for k, v in form.values.items() if "__prefix__" not in k}
    data.update(first_name="Hand", last_name="Made", email="hand@example.com")
    data["attributes"] = data.get("attributes") or "{}"

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(add, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    lead = Lead.objects.get(email="hand@example.com")
    assert dict(published) == {lead.pk: 1}  # at once, not ~80 s later by the sweeper
