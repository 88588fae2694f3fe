"""Claims that lose fast, on PostgreSQL: while the winner's transaction is held open, every
other claimer of the lead (button, PIN, hopper) gets already_claimed at once and a second
puller passes the lead over — nobody queues behind the winner's row lock."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from distribution.models import Assignment, Offer
from distribution.services.distribute import lead_distribute
from distribution.services.router import Router
from leads.models import Lead
from tests.conftest import JsonClient
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CLAIMERS = 100
# Losers run this many at a time: each holds a PostgreSQL connection, and the shared
# server's max_connections (100) must also serve the winner, the test and other runs.
AT_ONCE = 24
HOLD_LIMIT = 60.0  # seconds the winner is held at most (a safety net, never reached)


class Hold:
    """Once armed, holds the first operation to reach its writes (Router.flush: for a
    claim, the lead is locked and the claim decided) inside its open transaction until
    `release()`."""

    def __init__(self) -> None:
        self.inside, self.released = threading.Event(), threading.Event()
        self._taken = True  # disarmed: the setup's routing passes
        self.gave_up = False  # the hold ended by HOLD_LIMIT, not by release()
        self._lock = threading.Lock()

    def arm(self) -> None:
        self.inside.clear()
        self.released.clear()
        with self._lock:
            self._taken = False

    def wrap(self, flush: Callable[[Router], None]) -> Callable[[Router], None]:
        def held_flush(router: Router) -> None:
            with self._lock:
                first, self._taken = not self._taken, True
            if first:
                self.inside.set()
                if not self.released.wait(HOLD_LIMIT):
                    self.gave_up = True
            flush(router)

        return held_flush

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    held = Hold()
    monkeypatch.setattr(Router, "flush", held.wrap(Router.flush))
    yield held
    held.release()


def _post(agent: Any, path: str, body: Any = None) -> tuple[int, str, float]:
    """POST as AGENT: status, error code, and the seconds it took (never asserted)."""
    try:
        api = JsonClient(Client(), agent.plain_token)
        started = time.perf_counter()
        response = api.post(path, body)
        took = time.perf_counter() - started
        code = response.json().get("code", "") if response.content else ""
        return response.status_code, code, took
    finally:
        connections.close_all()


def _race_with_held_winner(
    hold: Hold, winner: Callable[[], tuple[int, str, float]], losers: list[Callable[[], Any]]
) -> tuple[tuple[int, str, float], list[tuple[int, str, float]]]:
    """Start the winner and hold it inside its transaction; run every loser to its answer
    while it is held (a loser waiting for the winner's lock would never answer before the
    release); then let the winner commit."""
    hold.arm()
    with ThreadPoolExecutor(max_workers=1) as solo:
        first = solo.submit(winner)
        while not hold.inside.wait(0.05):
            assert not first.done(), f"the first claim ended without writing: {first.result()}"
        with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
            answers = list(pool.map(lambda run: run(), losers))
        still_held = not hold.gave_up and not first.done()
        hold.release()
        won = first.result(timeout=30)
    assert still_held, "the winner's transaction ended before the losers answered"
    return won, answers


def _broadcast_lead(n: int) -> tuple[Lead, list[Any], dict[int, int]]:
    source = SourceFactory(slug="web")
    team = [AgentFactory() for _ in range(n)]
    make_rule(pool=make_pool(team), sources=[source], strategy="broadcast")
    lead = Lead.objects.create(source=source, email="race@example.com")
    lead_distribute(lead_id=lead.pk)
    offers = {o.agent_id: o.pk for o in Offer.objects.filter(lead=lead)}
    assert len(offers) == n
    return lead, team, offers


@pytest.mark.parametrize("by", ["button", "pin"])
def test_hundred_claimers_of_one_broadcast_lead_lose_at_once_while_the_winner_commits(
    hold: Hold, by: str
) -> None:
    lead, team, offers = _broadcast_lead(CLAIMERS)

    def claim(agent: Any) -> Callable[[], tuple[int, str, float]]:
        if by == "pin":
            return lambda: _post(agent, "/api/v1/claims", {"pin": lead.pin})
        return lambda: _post(agent, f"/api/v1/offers/{offers[agent.pk]}/claim")

    won, lost = _race_with_held_winner(hold, claim(team[0]), [claim(a) for a in team[1:]])

    assert won[:2] == (200, "")
    assert Counter((status, code) for status, code, _ in lost) == {
        (409, "already_claimed"): CLAIMERS - 1
    }
    lead.refresh_from_db()
    assert lead.owner_id == team[0].pk and lead.status == "assigned"
    assert Assignment.objects.filter(lead=lead).count() == 1
    assert dict(Counter(Offer.objects.filter(lead=lead).values_list("status", flat=True))) == {
        "claimed": 1,
        "withdrawn": CLAIMERS - 1,
    }
    # after the commit: the winner's repeated click is its lead, a late claimer still loses
    assert claim(team[0])()[:2] == (200, "")
    assert claim(team[1])()[:2] == (409, "already_claimed")


def test_hopper_pickers_lose_at_once_and_a_second_puller_passes_the_held_lead(
    hold: Hold,
) -> None:
    source = SourceFactory(slug="web")
    team = [AgentFactory() for _ in range(20)]
    make_rule("hopper", pool=make_pool(team, name="tank"), sources=[source], strategy="hopper")
    make_rule("pull", pool=make_pool(team, name="pullers"), strategy="pull", priority=20)
    hopper_lead = Lead.objects.create(source=source, email="hop@example.com")
    lead_distribute(lead_id=hopper_lead.pk)
    pull_lead = Lead.objects.create(email="pull@example.com")
    lead_distribute(lead_id=pull_lead.pk)
    path = f"/api/v1/hopper/{hopper_lead.pk}/claim"

    won, lost = _race_with_held_winner(
        hold,
        lambda: _post(team[0], path),
        [lambda agent=agent: _post(agent, path) for agent in team[1:]],
    )
    assert won[:2] == (200, "")
    assert Counter((s, c) for s, c, _ in lost) == {(409, "already_claimed"): len(team) - 1}
    assert Lead.objects.get(pk=hopper_lead.pk).owner_id == team[0].pk

    pulled, passed = _race_with_held_winner(
        hold, lambda: _post(team[1], "/api/v1/pull"), [lambda: _post(team[2], "/api/v1/pull")]
    )
    assert pulled[0] == 200 and [a[0] for a in passed] == [204]  # nothing else to pull
    assert Lead.objects.get(pk=pull_lead.pk).owner_id == team[1].pk


def test_a_claim_after_the_winner_committed_loses_in_one_query(django_assert_max_num_queries):
    """The losers that come after the winner's commit: the offer read outside any
    transaction says claimed — no BEGIN, no lock, no ROLLBACK (issue 10 item 3)."""
    from distribution.services.claims import AlreadyClaimed, offer_claim

    source = SourceFactory(slug="late")
    agents = [AgentFactory() for _ in range(3)]
    make_rule(pool=make_pool(agents), sources=[source], strategy="broadcast")
    lead = Lead.objects.create(source=source, email="late@example.com")
    lead_distribute(lead_id=lead.pk)
    offers = {o.agent_id: o.pk for o in Offer.objects.filter(lead=lead)}
    offer_claim(offer_id=offers[agents[0].pk], agent=agents[0])  # the winner

    with django_assert_max_num_queries(1), pytest.raises(AlreadyClaimed):
        offer_claim(offer_id=offers[agents[1].pk], agent=agents[1])
    assert Lead.objects.get(pk=lead.pk).owner_id == agents[0].pk
