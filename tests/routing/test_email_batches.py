"""E-mails go in batches: every e-mail one transaction queues goes out in one task over one
SMTP connection (one backend opened; its messages sent one after the other, so that a
failure leaves the rest to retry); a rolled-back part sends nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction

from distribution.services.distribute import leads_distribute_batch
from distribution.tasks.routing import send_emails
from leads.models import Lead
from tests.factories import SourceFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db(transaction=True)
N = 12


class Spy:
    """Counts the send_emails tasks queued and the messages sent over each e-mail connection
    (backend instance)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tasks: list[int] = []  # e-mails per task
        self.connections: dict[int, int] = {}  # messages per connection, in order of use
        self.backends: list[EmailBackend] = []
        queue, send = send_emails.apply_async, EmailBackend.send_messages

        def apply_async(args: Any = None, **options: Any) -> Any:
            self.tasks.append(len(args[0]))
            return queue(args=args, **options)

        def send_messages(backend: EmailBackend, messages: Any) -> int:
            key = id(backend)
            if key not in self.connections:
                self.backends.append(backend)  # kept alive: an id is never reused here
            self.connections[key] = self.connections.get(key, 0) + len(messages)
            return send(backend, messages)

        monkeypatch.setattr(send_emails, "apply_async", apply_async)
        monkeypatch.setattr(EmailBackend, "send_messages", send_messages)

    @property
    def sends(self) -> list[int]:
        """Messages sent per connection."""
        return list(self.connections.values())


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy(monkeypatch)


@pytest.fixture
def web(agents: Any) -> Any:
    source = SourceFactory(slug="web")
    make_rule(pool=make_pool(agents(N)), sources=[source])  # round robin: one lead each
    return source


def _pending(source: Any, n: int, tag: str) -> list[int]:
    leads = Lead.objects.bulk_create(
        Lead(source=source, email=f"{tag}{i}@example.com") for i in range(n)
    )
    return [lead.pk for lead in leads]


def test_one_routing_batch_of_n_assignments_sends_n_emails_in_one_task_and_one_send(
    web: Any, spy: Spy
) -> None:
    attempts = leads_distribute_batch(lead_ids=_pending(web, N, "a"), limit=N)

    assert [a.outcome for a in attempts] == ["assigned"] * N
    assert len(mail.outbox) == N
    assert len({m.to[0] for m in mail.outbox}) == N  # each agent told of their lead
    assert spy.tasks == [N] and spy.sends == [N]


def test_the_emails_of_several_routing_writes_in_one_transaction_go_in_one_task(
    web: Any, spy: Spy
) -> None:
    first, second = _pending(web, 5, "a"), _pending(web, 7, "b")
    with transaction.atomic():
        leads_distribute_batch(lead_ids=first, limit=5)
        leads_distribute_batch(lead_ids=second, limit=7)
        assert mail.outbox == []  # nothing before the commit

    assert len(mail.outbox) == 12
    assert spy.tasks == [12] and spy.sends == [12]


def test_a_rolled_back_savepoint_sends_none_of_its_emails_and_the_rest_go_together(
    web: Any, spy: Spy
) -> None:
    kept, dropped, later = _pending(web, 3, "k"), _pending(web, 4, "d"), _pending(web, 2, "l")
    with transaction.atomic():
        with transaction.atomic():  # released: its e-mails stay
            leads_distribute_batch(lead_ids=kept, limit=3)
        try:
            with transaction.atomic():
                leads_distribute_batch(lead_ids=dropped, limit=4)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        leads_distribute_batch(lead_ids=later, limit=2)

    told = {int(m.subject.split("#")[1].split()[0]) for m in mail.outbox}  # "… #<lead id> …"
    assert len(mail.outbox) == 5 and told == set(kept + later)
    assert spy.tasks == [5] and spy.sends == [5]
