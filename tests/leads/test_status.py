"""Status moves go through `Lead.transition_to`, which enforces the allowed-transitions map."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from leads.models import ALLOWED_TRANSITIONS, InvalidTransition, Lead, LeadEvent, LeadStatus

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def lead_in(status: str) -> Lead:
    return Lead(pk=1, status=status, first_name="Jane", status_changed_at=T0)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("pending", "unassigned"),
        ("pending", "offered"),
        ("offered", "assigned"),
        ("unassigned", "assigned"),
        ("assigned", "working"),
        ("working", "converted"),
        ("converted", "pending"),  # a manager re-distributes a closed lead
        ("pending", "distributed"),
    ],
)
def test_an_allowed_move_changes_the_status_and_returns_the_timeline_event(old, new):
    lead = lead_in(old)
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        event = lead.transition_to(new, note="")

    assert lead.status == new
    assert lead.status_changed_at == T0 + timedelta(minutes=5)
    assert isinstance(event, LeadEvent)
    assert event.pk is None  # the caller saves it with the lead
    assert (event.kind, event.data) == ("status", {"from": old, "to": new})
    assert event.message == f"{old} → {new}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("assigned", "prospect"),
        ("working", "prospect"),
        ("converted", "prospect"),
        ("assigned", "distributed"),
        ("lost", "distributed"),
        ("pending", "no-such-status"),
    ],
)
def test_a_disallowed_move_raises_and_leaves_the_lead_as_it_was(old, new):
    lead = lead_in(old)

    with pytest.raises(InvalidTransition, match=f"{old} → {new} is not allowed"):
        lead.transition_to(new)

    assert (lead.status, lead.status_changed_at) == (old, T0)


def test_moving_to_the_current_status_is_a_no_op():
    lead = lead_in("unassigned")
    assert lead.transition_to("unassigned") is None
    assert lead.status_changed_at == T0


def test_the_map_covers_every_status_and_never_allows_staying_put():
    assert set(ALLOWED_TRANSITIONS) == set(LeadStatus.values)
    for old, targets in ALLOWED_TRANSITIONS.items():
        assert old not in targets
        assert targets <= set(LeadStatus.values)


@pytest.mark.django_db
def test_the_event_names_the_actor_and_is_saved_on_the_timeline(agent):
    from tests.factories import LeadFactory

    lead = LeadFactory(owner=agent, assigned=True)
    event = lead.transition_to("contacted", by=agent, note="called back")
    lead.save()
    event.save()

    lead.refresh_from_db()
    assert lead.status == "contacted"
    stored = lead.events.get(kind="status")
    assert (stored.actor, stored.message) == (agent, "called back")


def test_phone_numbers_with_and_without_country_code_normalise_alike():
    from leads.models import normalise_phone

    assert normalise_phone("+31 6 1234 5678") == normalise_phone("06-12345678")
    assert normalise_phone("+1 (212) 555-0104") == normalise_phone("212 555 0104")
    assert normalise_phone("+31 6 1234 5678") != normalise_phone("+31 6 1234 5679")
