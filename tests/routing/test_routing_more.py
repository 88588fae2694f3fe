"""DESIGN §3 beyond the seeds' own words: declines, max rounds, sticky owners, contact SLAs,
weighted and load-balanced strategies, Beat wiring, the commands and the admin screens."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine
from django.core.management import call_command

from distribution.models import Assignment, DistributionAttempt, Offer, Schedule
from distribution.periodic import PERIODIC_TASKS
from distribution.services.claims import offer_decline, offers_expire
from distribution.services.sla import leads_reassign_missed_sla
from leads.models import Activity, Lead
from leads.services import activity_log
from tests.factories import CampaignFactory, UserFactory
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def test_a_decline_goes_to_the_next_at_once_and_the_decliner_is_not_offered_again(
    agents, post, web
):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], claim_timeout=dt.timedelta(minutes=5))
    lead = post()
    offer_decline(offer_id=Offer.objects.get(lead=lead, agent=a).pk, agent=a)
    offer_decline(offer_id=Offer.objects.get(lead=lead, agent=b).pk, agent=b)
    lead.refresh_from_db()
    assert lead.status == "exception"  # both declined: nobody is left to offer it to
    assert Counter(Offer.objects.filter(lead=lead).values_list("agent_id", flat=True)) == {
        a.pk: 1,
        b.pk: 1,
    }
    assert DistributionAttempt.objects.filter(lead=lead, trigger="decline").count() == 2


def test_after_max_rounds_the_default_agent_gets_the_lead(agents, post, web):
    a, b, c, default = agents(4)
    make_rule(
        pool=make_pool([a, b, c]),
        sources=[web],
        claim_timeout=dt.timedelta(minutes=5),
        max_rounds=2,
        default_agent=default,
    )
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        lead = post()
        for _ in range(2):
            clock.shift(dt.timedelta(minutes=6))
            offers_expire()
    lead.refresh_from_db()
    assert (lead.owner, lead.status) == (default, "assigned")
    last = DistributionAttempt.objects.filter(lead=lead).order_by("id").last()
    assert last.outcome == "default_agent"


def test_a_sticky_owner_rule_sends_a_duplicate_to_the_first_leads_owner(agents, post, web):
    a, b = agents(2)
    CampaignFactory(slug="solar")
    make_rule(pool=make_pool([a, b]), sources=[web], sticky_owner=True)
    first = post(email="same@example.com", campaign="solar")
    second = post(email="SAME@example.com", campaign="solar")
    assert first.owner == a
    assert second.duplicate_of_id == first.pk and second.owner == a
    assert Assignment.objects.get(lead=second).method == "sticky"


def test_a_missed_contact_sla_takes_the_lead_back_and_records_the_miss(agents, post, web):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], contact_sla=dt.timedelta(hours=1))
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        missed, kept = post(), post()
        assert (missed.owner, kept.owner) == (a, b)
        activity_log(lead=kept, agent=b, kind=Activity.Kind.CALL_ATTEMPT)
        clock.shift(dt.timedelta(minutes=61))
        assert leads_reassign_missed_sla() == 1
    missed.refresh_from_db()
    kept.refresh_from_db()
    assert missed.owner == b and kept.owner == b
    assert Assignment.objects.get(lead=missed, agent=a).sla_missed
    assert a.notices.filter(message__contains="taken back").exists()


def test_weighted_gives_shares_by_weight(agents, post, web):
    heavy, light = agents(2)
    pool = make_pool([heavy, light])
    pool.members.filter(agent=heavy).update(weight=2)
    make_rule(pool=pool, sources=[web], strategy="weighted")
    with time_machine.travel(MONDAY_10, tick=False):
        owners = Counter(post().owner for _ in range(9))
    assert owners == {heavy: 6, light: 3}


def test_load_balanced_gives_the_lead_to_the_agent_with_fewest_open_leads(agents, post, web):
    busy, idle = agents(2)
    Lead.objects.create(first_name="open", owner=busy, status="working")
    make_rule(pool=make_pool([busy, idle]), sources=[web], strategy="load_balanced")
    assert post().owner == idle


def test_beat_runs_the_sweeper_the_offer_expiry_every_5s_and_the_held_release():
    by_task = {p.task: p.every_seconds for p in PERIODIC_TASKS}
    assert by_task["distribution.expire_offers"] == 5
    assert "distribution.release_held" in by_task
    assert "distribution.requeue_pending" in by_task
    call_command("setup_periodic_tasks")
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="distribution.expire_offers").exists()


def test_the_expire_offers_command_moves_overdue_offers_on(agents, post, web, capsys):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], claim_timeout=dt.timedelta(minutes=5))
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        lead = post()
        clock.shift(dt.timedelta(minutes=6))
        call_command("expire_offers")
    assert "1 offer(s) expired" in capsys.readouterr().out
    assert Offer.objects.get(lead=lead, status="open").agent == b


def test_the_distribute_pending_command_routes_pending_leads(agents, web, capsys):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web])
    Lead.objects.bulk_create(Lead(source=web, email=f"c{i}@example.com") for i in range(3))
    call_command("distribute_pending", "--quiet")
    assert "3 lead(s) processed: 3 assigned." in capsys.readouterr().out
    assert Lead.objects.filter(owner=a).count() == 3


@pytest.fixture
def manager(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_admin_screens_render(agents, post, web, manager):
    a, b = agents(2)
    rule = make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    make_schedule()
    lead = post()
    for path in (
        "/admin/distribution/rule/",
        f"/admin/distribution/rule/{rule.pk}/change/",
        "/admin/distribution/pool/",
        f"/admin/distribution/pool/{rule.pool_id}/change/",
        "/admin/distribution/schedule/",
        "/admin/distribution/offer/",
        "/admin/distribution/assignment/",
        "/admin/distribution/automation/add/",
        "/admin/distribution/rule/queues/assignment/",
        "/admin/distribution/rule/queues/exception/",
        "/admin/distribution/rule/queues/hopper/",
        f"/admin/distribution/rule/simulate/?rule={rule.pk}&days=7",
    ):
        assert manager.get(path).status_code == 200, path
    page = manager.get(f"/admin/leads/lead/{lead.pk}/change/").content.decode()
    assert "distribution history" in page.lower()
    assert "rules tried" in page.lower() and a.email in page


def test_fill_holidays_from_the_country(manager):
    schedule = make_schedule(holiday_country="NL")
    response = manager.post(
        "/admin/distribution/schedule/",
        {"action": "fill_holidays", "_selected_action": [schedule.pk]},
        follow=True,
    )
    assert "Added" in response.content.decode()
    assert Schedule.objects.get(pk=schedule.pk).holidays.filter(origin="country").count() > 20


def test_the_fill_holidays_command(capsys):
    make_schedule(holiday_country="US")
    call_command("fill_holidays")
    assert "holiday(s) added" in capsys.readouterr().out
    assert Schedule.objects.get().holidays.filter(name__icontains="Independence").exists()
