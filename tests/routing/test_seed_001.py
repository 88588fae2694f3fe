"""Seed 001 — a CRM distribution module: Lead Assignment queue, pools, rules by source, round
robin with re-distribution on timeout, the Piranha pool and working hours with holidays."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail

from distribution.errors import AlreadyClaimed
from distribution.models import Holiday, Offer
from distribution.services.claims import offer_claim, offer_claim_by_pin, offers_expire
from leads.models import Lead
from tests.factories import SourceFactory, UserFactory
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def manager(client):
    user = UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


# "The lead Assignment section is a list of Leads that need to be manually assigned to a
# user. This can happen if a leads source did not match a rule for automatic distribution"
def test_a_lead_whose_source_matches_no_rule_waits_in_the_lead_assignment_queue(
    agents, post, web, client, manager
):
    other = SourceFactory(slug="zillow")
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[other])

    lead = post(source=web)

    assert (lead.status, lead.owner) == ("unassigned", None)
    page = client.get("/admin/distribution/rule/queues/assignment/").content.decode()
    assert f"#{lead.pk}" in page


# "...or if a lead went through all users in a pool and was not claimed."
def test_a_lead_no_pool_member_claimed_ends_in_a_queue_a_manager_assigns_from(
    agents, post, web, client, manager
):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], claim_timeout=dt.timedelta(minutes=5))
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        lead = post()
        for _ in range(2):
            clock.shift(dt.timedelta(minutes=6))
            offers_expire()
    lead.refresh_from_db()

    assert lead.status == "exception" and lead.owner is None
    assert "no eligible member" in lead.exception_reason
    page = client.get("/admin/distribution/rule/queues/exception/").content.decode()
    assert f"#{lead.pk}" in page and "no eligible member" in page


# "you will check the box next to each lead, choose an agent to assign from the dropdown,
# then click the "Save Assignment" button ... The agent who is being assigned the lead will
# get an email notification that a lead was assigned to them."
def test_save_assignment_assigns_the_checked_leads_and_emails_the_agent(
    agents, post, client, manager, django_capture_on_commit_callbacks
):
    (ava,) = agents(1)
    first, second, untouched = post(), post(), post()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/distribution/rule/queues/assignment/",
            {"lead": [first.pk, second.pk], "agent": ava.pk},
            follow=True,
        )

    assert "Assigned 2 leads" in response.content.decode()
    owners = dict(Lead.objects.values_list("pk", "owner_id"))
    assert owners[first.pk] == owners[second.pk] == ava.pk and owners[untouched.pk] is None
    assert [m.to for m in mail.outbox] == [[ava.email], [ava.email]]
    assert f"#{first.pk}" in mail.outbox[0].subject


# "You can setup multiple pools for different areas, cities, etc." + "Any lead that enters
# the system and matches the source of the rule, will follow the distribution rules you
# specified."
def test_each_source_follows_its_rule_to_its_own_pool(agents, post, web):
    zillow = SourceFactory(slug="zillow")
    east, west = agents(2)
    make_rule("east", pool=make_pool([east], name="east"), sources=[web])
    make_rule("west", pool=make_pool([west], name="west"), sources=[zillow])

    assert post(source=web).owner == east
    assert post(source=zillow).owner == west
    assert Lead.objects.get(owner=west).rule.name == "west"


# "Round Robin - ... the next agent in-line from the pool will be sent the lead. If there is
# a time parameter specified, they must call in the allotted time. If they do not call in
# the alotted time, the lead is re-distributed to the next person in-line from the pool."
def test_round_robin_offer_not_claimed_in_time_goes_to_the_next_in_line(agents, post, web):
    a, b, c = agents(3)
    make_rule(pool=make_pool([a, b, c]), sources=[web], claim_timeout=dt.timedelta(minutes=15))
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        lead = post()
        assert list(
            Offer.objects.filter(lead=lead, status="open").values_list("agent_id", flat=True)
        ) == [a.pk]

        clock.shift(dt.timedelta(minutes=14))
        assert offers_expire() == 0  # still inside the allotted time
        clock.shift(dt.timedelta(minutes=2))
        assert offers_expire() == 1

        open_offer = Offer.objects.get(lead=lead, status="open")
        assert open_offer.agent == b and open_offer.round == 2
        assert open_offer.expires_at == MONDAY_10 + dt.timedelta(minutes=31)
        lead.refresh_from_db()
        assert lead.status == "offered"
        offer_claim(offer_id=open_offer.pk, agent=b)
    lead.refresh_from_db()
    assert (lead.owner, lead.status) == (b, "assigned")


def test_round_robin_gives_the_next_lead_to_the_next_agent_in_line(agents, post, web):
    a, b, c = agents(3)
    make_rule(pool=make_pool([a, b, c]), sources=[web])

    assert [post().owner for _ in range(6)] == [a, b, c, a, b, c]


# "Piranha Pool - the lead is sent to all agents within the pool. First agent to call the
# lead using the pin number associated gets the lead assigned. All others will get an alert
# saying the lead was claimed by another agent."
def test_piranha_first_to_call_with_the_pin_wins_and_the_others_are_alerted(
    agents, post, web, django_capture_on_commit_callbacks
):
    a, b, c = agents(3)
    make_rule(pool=make_pool([a, b, c]), sources=[web], strategy="broadcast")
    lead = post()
    assert set(Offer.objects.filter(lead=lead).values_list("agent_id", flat=True)) == {
        a.pk,
        b.pk,
        c.pk,
    }
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        offer_claim_by_pin(agent=b, pin=lead.pin)
    with pytest.raises(AlreadyClaimed):
        offer_claim_by_pin(agent=c, pin=lead.pin)

    lead.refresh_from_db()
    assert lead.owner == b
    assert dict(Offer.objects.filter(lead=lead).values_list("agent_id", "status")) == {
        a.pk: "withdrawn",
        b.pk: "claimed",
        c.pk: "withdrawn",
    }
    alerted = {m.to[0] for m in mail.outbox if "claimed by another agent" in m.subject}
    assert alerted == {a.email, c.email}
    for other in (a, c):
        assert other.notices.filter(message__contains="claimed by another agent").exists()


# "if leads come in outside the specified working hours, or during a Holiday, the agent has
# until the next open hours plus the time delay to call and claim a lead before its
# distributed."
def test_a_lead_arriving_at_night_may_be_claimed_until_the_opening_plus_the_claim_time(
    agents, post, web
):
    a, b = agents(2)
    hours = make_schedule(days=range(5), start="09:00", end="17:00")
    make_rule(
        pool=make_pool([a, b]),
        sources=[web],
        claim_timeout=dt.timedelta(minutes=30),
        schedule=hours,
        after_hours="offer_now",
    )
    sunday_night = dt.datetime(2025, 3, 2, 23, 0, tzinfo=UTC)
    with time_machine.travel(sunday_night, tick=False) as clock:
        lead = post()
        offer = Offer.objects.get(lead=lead)
        assert offer.expires_at == dt.datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
        clock.move_to(dt.datetime(2025, 3, 3, 9, 29, tzinfo=UTC))
        assert offers_expire() == 0
        clock.move_to(dt.datetime(2025, 3, 3, 9, 31, tzinfo=UTC))
        assert offers_expire() == 1
    assert Offer.objects.get(lead=lead, status="open").agent == b


def test_a_holiday_delays_the_claim_timer_to_the_next_working_day(agents, post, web):
    (a,) = agents(1)
    hours = make_schedule(days=range(5), start="09:00", end="17:00")
    Holiday.objects.create(schedule=hours, date=dt.date(2025, 3, 3), name="Closed Monday")
    make_rule(
        pool=make_pool([a]),
        sources=[web],
        claim_timeout=dt.timedelta(minutes=30),
        schedule=hours,
        after_hours="offer_now",
    )
    with time_machine.travel(MONDAY_10, tick=False):
        lead = post()
    assert Offer.objects.get(lead=lead).expires_at == dt.datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


def test_country_holidays_close_the_schedule_too(agents, post, web):
    (a,) = agents(1)
    hours = make_schedule(days=range(7), start="09:00", end="17:00", holiday_country="NL")
    make_rule(
        pool=make_pool([a]),
        sources=[web],
        claim_timeout=dt.timedelta(hours=1),
        schedule=hours,
        after_hours="offer_now",
    )
    kings_day = dt.datetime(2025, 4, 26, 10, 0, tzinfo=UTC)  # a Saturday, a Dutch holiday
    with time_machine.travel(kings_day, tick=False):
        lead = post()
    assert Offer.objects.get(lead=lead).expires_at == dt.datetime(2025, 4, 27, 10, 0, tzinfo=UTC)
