"""Races on PostgreSQL: fifty agents claim one broadcast lead; two `distribute_pending`
processes share a thousand leads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection, connections
from django.test import Client

from accounts.models import AgentProfile, User
from distribution.models import Assignment, DistributionAttempt, Offer, Pool, PoolMember
from leads.models import Lead
from tests.conftest import JsonClient
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
CLAIMERS = 50


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_fifty_agents_claim_one_broadcast_offer_and_exactly_one_wins():
    source = SourceFactory(slug="web")
    team = [AgentFactory() for _ in range(CLAIMERS)]
    make_rule(pool=make_pool(team), sources=[source], strategy="broadcast")
    lead = Lead.objects.create(source=source, email="race@example.com")
    from distribution.services.distribute import lead_distribute

    lead_distribute(lead_id=lead.pk)
    offers = {o.agent_id: o.pk for o in Offer.objects.filter(lead=lead)}
    assert len(offers) == CLAIMERS
    barrier = threading.Barrier(CLAIMERS)

    def claim(agent: Any) -> tuple[int, str]:
        try:
            api = JsonClient(Client(), agent.plain_token)
            barrier.wait(timeout=30)
            response = api.post(f"/api/v1/offers/{offers[agent.pk]}/claim")
            return response.status_code, response.json().get("code", "")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=CLAIMERS) as pool:
        answers = list(pool.map(claim, team))

    assert Counter(status for status, _ in answers) == {200: 1, 409: CLAIMERS - 1}, answers
    assert {code for status, code in answers if status == 409} == {"already_claimed"}
    lead.refresh_from_db()
    assert lead.owner_id is not None and lead.status == "assigned"
    assert Assignment.objects.filter(lead=lead).count() == 1
    assert dict(Counter(Offer.objects.filter(lead=lead).values_list("status", flat=True))) == {
        "claimed": 1,
        "withdrawn": CLAIMERS - 1,
    }


def test_two_distribute_pending_processes_assign_each_lead_once_and_fairly():
    source = SourceFactory(slug="web")
    users = User.objects.bulk_create(
        User(username=f"rr{i}@example.com", email=f"rr{i}@example.com") for i in range(7)
    )
    AgentProfile.objects.bulk_create(AgentProfile(user=u) for u in users)
    pool = Pool.objects.create(name="rr")
    PoolMember.objects.bulk_create(
        PoolMember(pool=pool, agent=u, position=i) for i, u in enumerate(users)
    )
    make_rule(pool=pool, sources=[source])
    Lead.objects.bulk_create(Lead(source=source, email=f"p{i}@example.com") for i in range(1000))
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    cmd = [sys.executable, "manage.py", "distribute_pending", "--quiet"]

    procs = [
        subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], outputs
    assert Lead.objects.filter(status="assigned").count() == 1000
    per_lead = Counter(Assignment.objects.values_list("lead_id", flat=True))
    assert len(per_lead) == 1000 and set(per_lead.values()) == {1}
    assert DistributionAttempt.objects.count() == 1000
    per_agent = Counter(Lead.objects.values_list("owner_id", flat=True))
    assert max(per_agent.values()) - min(per_agent.values()) <= 1, per_agent
    # both processes really took part
    processed = [int(out.split()[0]) for out, _ in outputs]
    assert sum(processed) == 1000


def test_twenty_agents_pick_one_hopper_lead_and_pull_distinct_leads():
    source = SourceFactory(slug="web")
    team = [AgentFactory() for _ in range(20)]
    make_rule("hopper", pool=make_pool(team, name="tank"), sources=[source], strategy="hopper")
    make_rule("pull", pool=make_pool(team, name="pullers"), strategy="pull", priority=20)
    from distribution.services.distribute import lead_distribute

    hopper_lead = Lead.objects.create(source=source, email="hop@example.com")
    lead_distribute(lead_id=hopper_lead.pk)
    pull_leads = [Lead.objects.create(email=f"pull{i}@example.com") for i in range(20)]
    for lead in pull_leads:
        lead_distribute(lead_id=lead.pk)
    barrier = threading.Barrier(len(team))

    def race(agent: Any) -> tuple[int, int, int | None]:
        try:
            api = JsonClient(Client(), agent.plain_token)
            barrier.wait(timeout=30)
            picked = api.post(f"/api/v1/hopper/{hopper_lead.pk}/claim").status_code
            pulled = api.post("/api/v1/pull")
            return (
                picked,
                pulled.status_code,
                (pulled.json()["id"] if pulled.status_code == 200 else None),
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(team)) as pool:
        answers = list(pool.map(race, team))

    assert Counter(a[0] for a in answers) == {200: 1, 409: len(team) - 1}
    pulled = [a[2] for a in answers]
    assert all(s == 200 for _, s, _ in answers) and len(set(pulled)) == len(team)
    assert Assignment.objects.filter(lead__in=pull_leads).count() == len(team)
