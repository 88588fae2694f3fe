"""Seed 003 — distribution types: None, Distribute All, Round Robin with Default Agent and
Lead Exception, Direct, Ring All (ten at a time, after hours, TCPA); initial status and
activity; business hours."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import time_machine

from distribution.errors import AlreadyClaimed
from distribution.models import DistributionAttempt, Offer
from distribution.services.claims import leads_assign_manually, offer_claim, offers_expire
from distribution.services.notify import WEBHOOK_RETRIES
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


# "None: Leads will not be assigned but will upload as prospects"
def test_strategy_none_stores_the_lead_as_a_prospect(post, web):
    make_rule(sources=[web], strategy="none")
    lead = post()
    assert (lead.status, lead.owner) == ("prospect", None)


# "Distribute All: All eligible agents will see the New Leads button. The first agent to
# click this button is assigned the lead."
def test_distribute_all_the_first_click_wins(agents, post, web):
    a, b, c = agents(3)
    away = AgentFactory(profile__available=False)
    make_rule(pool=make_pool([a, b, c, away]), sources=[web], strategy="broadcast")
    lead = post()
    offers = {o.agent_id: o for o in Offer.objects.filter(lead=lead)}
    assert set(offers) == {a.pk, b.pk, c.pk}  # eligible agents only

    offer_claim(offer_id=offers[c.pk].pk, agent=c)
    with pytest.raises(AlreadyClaimed):
        offer_claim(offer_id=offers[a.pk].pk, agent=a)
    lead.refresh_from_db()
    assert lead.owner == c


# "Round Robin: Leads will be evenly distributed to all eligible agents based on the time of
# the last lead assigned. The agent with the oldest lead assignment time will be assigned"
def test_round_robin_picks_the_agent_with_the_oldest_last_assignment(agents, post, web):
    a, b, c = agents(3)
    for agent, hours_ago in ((a, 1), (b, 3), (c, 2)):
        agent.agent.last_turn_at = MONDAY_10 - dt.timedelta(hours=hours_ago)
        agent.agent.save()
    make_rule(pool=make_pool([a, b, c]), sources=[web])
    with time_machine.travel(MONDAY_10, tick=False):
        assert [post().owner for _ in range(3)] == [b, c, a]


# "The last lead assigned time is affected by manual assignment and distribution."
def test_a_manual_assignment_moves_the_agent_to_the_back_of_the_line(agents, post, web):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web])
    assert post().owner == a
    elsewhere = post(source=SourceFactory(slug="csv"))  # no rule matches this source
    leads_assign_manually(lead_ids=[elsewhere.pk], agent=b)
    # b just got a lead by hand, so a (whose turn is older) is next
    assert post().owner == a
    b.agent.refresh_from_db()
    assert b.agent.last_turn_at is not None


# "Leads that do not have eligible or available agents to receive them are sent directly to
# the Default Agent if one has been assigned."
def test_no_eligible_agent_sends_the_lead_to_the_default_agent(agents, post, web):
    away = AgentFactory(profile__available=False)
    (default,) = agents(1)
    make_rule(pool=make_pool([away]), sources=[web], default_agent=default)
    lead = post()
    assert (lead.owner, lead.status) == (default, "assigned")
    assert DistributionAttempt.objects.get(lead=lead).outcome == "default_agent"


# "If a Default Agent has not been assigned, the leads are sent to Lead Exception."
def test_no_eligible_agent_and_no_default_agent_is_a_lead_exception_with_its_reason(post, web):
    away = AgentFactory(profile__available=False)
    make_rule(pool=make_pool([away]), sources=[web])
    lead = post()
    assert (lead.owner, lead.status) == (None, "exception")
    assert "unavailable" in lead.exception_reason


# "Direct: One of the following fields must be defined to perform direct assign:
# AssignToEmail ... AssignToUserId"
def test_direct_assigns_to_the_agent_named_by_assign_to_email(agents, post, web):
    _, b = agents(2)
    make_rule(sources=[web], strategy="direct")
    assert post(assign_to_email=b.email.upper()).owner == b


def test_direct_assigns_to_the_agent_named_by_assign_to_user_id(agents, post, web):
    a, _ = agents(2)
    make_rule(sources=[web], strategy="direct")
    assert post(assign_to_user_id=str(a.pk)).owner == a


# "If neither of these fields are defined or no match is found, the lead will not be
# assigned and instead be uploaded as a prospect."
def test_direct_without_a_target_or_with_an_unknown_one_is_a_prospect(agents, post, web):
    make_rule(sources=[web], strategy="direct")
    assert post().status == "prospect"
    assert post(assign_to_email="nobody@example.com").status == "prospect"
    assert post(assign_to_user_id="999999").status == "prospect"


# Direct: "Leads that do not have eligible or available agents to receive them are sent
# directly to the Default Agent ... If a Default Agent has not been assigned, ... Lead
# Exception."
def test_direct_to_an_unavailable_agent_falls_back(agents, post, web):
    away = AgentFactory(profile__available=False)
    (default,) = agents(1)
    rule = make_rule(sources=[web], strategy="direct", default_agent=default)
    assert post(assign_to_email=away.email).owner == default
    rule.default_agent = None
    rule.save()
    assert post(assign_to_email=away.email).status == "exception"


# "Ring All: All eligible agents' work phones will ring. ... Up to ten agents are dialed at
# a time."
def test_ring_all_offers_ten_agents_at_a_time_and_the_next_ten_on_timeout(agents, post, web):
    team = agents(25)
    make_rule(
        pool=make_pool(team),
        sources=[web],
        strategy="broadcast",
        batch_size=10,
        claim_timeout=dt.timedelta(minutes=1),
    )
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        lead = post()
        first = set(
            Offer.objects.filter(lead=lead, status="open").values_list("agent_id", flat=True)
        )
        assert first == {a.pk for a in team[:10]}
        clock.shift(dt.timedelta(minutes=2))
        offers_expire()
        second = set(
            Offer.objects.filter(lead=lead, status="open").values_list("agent_id", flat=True)
        )
        assert second == {a.pk for a in team[10:20]}
        clock.shift(dt.timedelta(minutes=2))
        offers_expire()
        third = set(
            Offer.objects.filter(lead=lead, status="open").values_list("agent_id", flat=True)
        )
        assert third == {a.pk for a in team[20:]}


# "If a lead is received after hours, the lead will be placed in the Unassigned queue."
def test_ring_all_after_hours_goes_to_the_unassigned_queue(agents, post, web):
    team = agents(3)
    hours = make_schedule(days=range(5), start="09:00", end="17:00")
    make_rule(
        pool=make_pool(team),
        sources=[web],
        strategy="broadcast",
        schedule=hours,
        after_hours="unassigned",
    )
    with time_machine.travel(dt.datetime(2025, 3, 3, 22, 0, tzinfo=UTC), tick=False):
        lead = post()
    assert (lead.status, lead.owner) == ("unassigned", None)
    assert not Offer.objects.filter(lead=lead).exists()
    with time_machine.travel(MONDAY_10, tick=False):
        assert post().status == "offered"  # within business hours it rings


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(settings):
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/ring"
    yield _Hook.received
    server.shutdown()


# "Includes the option to follow TCPA logic." — the ring is pushed to the telephony webhook,
# never outside 08:00–21:00 in the lead's time zone.
def test_ring_all_pushes_the_webhook_within_tcpa_hours_only(agents, post, web, webhook):
    team = agents(2)
    make_rule(pool=make_pool(team), sources=[web], strategy="broadcast", tcpa=True)
    with time_machine.travel(MONDAY_10, tick=False):
        lead = post(attributes={"timezone": "America/New_York"})  # 05:00 in New York
    assert webhook == []
    assert lead.events.filter(message__contains="TCPA").exists()
    with time_machine.travel(MONDAY_10 + dt.timedelta(hours=6), tick=False):  # 11:00 NY
        lead = post(attributes={"timezone": "America/New_York"})
    assert [w["lead"]["id"] for w in webhook] == [lead.pk]
    assert {a["email"] for a in webhook[0]["agents"]} == {a.email for a in team}


class _Broken(BaseHTTPRequestHandler):
    """A telephony endpoint that is down: every POST is counted and answered 500."""

    received: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_webhook(settings):
    _Broken.received = []
    server = HTTPServer(("127.0.0.1", 0), _Broken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/ring"
    yield _Broken.received
    server.shutdown()
    server.server_close()


# The webhook must really be tried (and retried) while the offer stands: a build that never
# sends it, or lets its failure undo the offer, fails here.
def test_a_failing_webhook_never_blocks_the_offer(agents, post, web, broken_webhook, eager_retries):
    team = agents(2)
    make_rule(pool=make_pool(team), sources=[web], strategy="broadcast")
    lead = post()
    assert lead.status == "offered"
    assert set(lead.offers.filter(status="open").values_list("agent", flat=True)) == {
        a.pk for a in team
    }
    assert [w["lead"]["id"] for w in broken_webhook] == [lead.pk] * (1 + WEBHOOK_RETRIES)
    assert list(
        lead.webhook_attempts.order_by("attempt").values_list("status_code", "outcome")
    ) == [(500, "retrying")] * WEBHOOK_RETRIES + [(500, "failed")]


# "the user must select an Initial Status and Initial Activity for the application to be in
# when it is distributed and assigned to an agent."
def test_an_assigned_lead_gets_the_rules_initial_status_and_activity(agents, post, web):
    (a,) = agents(1)
    make_rule(
        pool=make_pool([a]), sources=[web], initial_status="working", initial_activity="new_lead"
    )
    lead = post()
    assert (lead.owner, lead.status) == (a, "working")
    assert list(lead.activities.values_list("kind", "agent")) == [("new_lead", a.pk)]


# "Distribution can be performed only during an organization's business hours."
def test_a_lead_arriving_outside_business_hours_is_held_until_the_opening(agents, post, web):
    (a,) = agents(1)
    hours = make_schedule(days=range(5), start="09:00", end="17:00")
    make_rule(pool=make_pool([a]), sources=[web], schedule=hours)  # after_hours=hold
    from distribution.services.distribute import leads_release_held

    with time_machine.travel(dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC), tick=False) as clock:
        lead = post()  # a Saturday
        assert (lead.status, lead.held_until) == ("held", dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC))
        clock.move_to(dt.datetime(2025, 3, 3, 8, 59, tzinfo=UTC))
        assert leads_release_held() == 0
        clock.move_to(dt.datetime(2025, 3, 3, 9, 0, 5, tzinfo=UTC))
        assert leads_release_held() == 1
    lead.refresh_from_db()
    assert (lead.owner, lead.status) == (a, "assigned")
