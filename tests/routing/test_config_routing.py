"""Configuration as code for schedules, pools, rules and automations (DESIGN §7 shapes)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from distribution.configuration import ConfigError, config_apply, config_export, load_text
from distribution.models import Automation, Pool, Rule, Schedule

pytestmark = pytest.mark.django_db

SETUP = """
agents:
  - {email: ava@example.com, name: Ava}
  - {email: ben@example.com, name: Ben, schedule: office}
sources: [{slug: web, name: Web}]
campaigns: [{slug: solar, name: Solar}]
schedules:
  - name: office
    timezone: Europe/Amsterdam
    intervals:
      - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "12:00"}
      - {days: [mon, tue, wed, thu, fri], start: "13:00", end: "17:30"}
      - {days: [sat], start: "22:00", end: "24:00"}
    holidays: [{date: "2025-12-25", name: Christmas}]
    holiday_country: NL
pools:
  - name: east
    members:
      - {agent: ava@example.com, weight: 2, caps: {day: 10, week: 40}}
      - {agent: ben@example.com, weight: 1.5, filters: [{field: city, op: eq, value: Utrecht}]}
rules:
  - name: solar web
    priority: 5
    enabled: true
    sources: [web]
    campaign: solar
    filters: [{field: company_size, op: gte, value: 50}]
    strategy: broadcast
    pool: east
    claim_timeout: 15m
    max_rounds: 3
    batch_size: 10
    schedule: office
    after_hours: offer_now
    default_agent: ava@example.com
    caps: {day: 20}
    pull_allotment: 5
    initial_status: working
    initial_activity: new_lead
    sticky_owner: true
    tcpa: true
    contact_sla: 2h
    tiers: [{metric: conversion_rate, op: gte, threshold: 0.2, multiplier: 1.5}]
automations:
  - {name: vip, trigger: created, filters: [{field: company_name, op: eq, value: Globex}],
     action: user, target: ben@example.com}
  - {name: tank, action: rule, target: solar web}
"""


def test_a_full_routing_setup_applies_and_reads_back():
    report = config_apply(load_text(SETUP))
    assert report.counts["rules"].created == 1 and report.counts["pools"].created == 1
    rule = Rule.objects.get(name="solar web")
    assert (rule.strategy, rule.pool.name, rule.claim_timeout, rule.schedule.name) == (
        "broadcast",
        "east",
        dt.timedelta(minutes=15),
        "office",
    )
    assert [s.slug for s in rule.sources.all()] == ["web"]
    assert rule.cap_day == 20 and rule.tiers.get().multiplier == 1.5
    schedule = Schedule.objects.get(name="office")
    assert schedule.intervals.count() == 11
    assert schedule.intervals.filter(weekday=5).get().end == dt.time(0)
    pool = Pool.objects.get(name="east")
    assert [(m.agent.email, m.cap_day) for m in pool.members.order_by("position")] == [
        ("ava@example.com", 10),
        ("ben@example.com", None),
    ]
    assert Automation.objects.get(name="vip").target_user.email == "ben@example.com"


def test_export_then_apply_changes_nothing_and_exports_the_same():
    config_apply(load_text(SETUP))
    first = config_export()
    report = config_apply(load_text(first))
    assert report.total_changes == 0
    assert config_export() == first
    exported = yaml.safe_load(first)
    assert exported["schedules"][0]["intervals"][0] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "12:00",
    }
    assert exported["rules"][0]["claim_timeout"] == "15m"
    assert exported["pools"][0]["members"][0] == {
        "agent": "ava@example.com",
        "weight": 2,
        "caps": {"day": 10, "week": 40},
    }


def test_applying_twice_changes_nothing():
    config_apply(load_text(SETUP))
    assert config_apply(load_text(SETUP)).total_changes == 0


def test_a_pools_members_are_the_ones_listed():
    config_apply(load_text(SETUP))
    config_apply({"pools": [{"name": "east", "members": [{"agent": "ben@example.com"}]}]})
    assert list(Pool.objects.get(name="east").members.values_list("agent__email", flat=True)) == [
        "ben@example.com"
    ]


def test_errors_name_their_key_path_and_nothing_is_applied():
    bad = {
        "schedules": [
            {
                "name": "x",
                "timezone": "Mars/Base",
                "intervals": [{"days": ["mon", "funday"], "start": "9", "end": "17:00"}],
            }
        ],
        "pools": [{"name": "p", "members": [{"agent": "ghost@example.com", "weight": -1}]}],
        "rules": [
            {
                "name": "r",
                "strategy": "telepathy",
                "pool": "nope",
                "claim_timeout": "soon",
                "filters": [{"field": "city", "op": "like"}],
            }
        ],
        "automations": [{"name": "a", "action": "user", "target": "nobody@example.com"}],
    }
    with pytest.raises(ConfigError) as err:
        config_apply(bad)
    text = "\n".join(err.value.messages)
    for path in (
        "schedules[0].timezone",
        "schedules[0].intervals[0].days",
        "pools[0].members[0].agent",
        "pools[0].members[0].weight",
        "rules[0].strategy",
        "rules[0].pool",
        "rules[0].claim_timeout",
        "rules[0].filters[0]",
        "automations[0].target",
    ):
        assert path in text, path
    assert not Rule.objects.exists() and not Pool.objects.exists()


def test_a_rule_without_enabled_is_created_disabled():
    config_apply({"rules": [{"name": "draft", "strategy": "manual"}]})
    assert Rule.objects.get(name="draft").enabled is False


def test_enabling_a_rule_by_config_distributes_its_waiting_leads(
    agents, post, web, django_capture_on_commit_callbacks
):
    (a,) = agents(1)
    lead = post()
    assert lead.status == "unassigned"
    cfg = {
        "pools": [{"name": "p", "members": [{"agent": a.email}]}],
        "rules": [
            {
                "name": "r",
                "enabled": True,
                "sources": ["web"],
                "pool": "p",
                "initial_activity": "new_lead",
            }
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        config_apply(cfg)
    lead.refresh_from_db()
    assert lead.owner == a


def test_dry_run_of_an_enabling_rule_distributes_nothing(
    agents, post, web, django_capture_on_commit_callbacks
):
    (a,) = agents(1)
    lead = post()
    cfg = {
        "pools": [{"name": "p", "members": [{"agent": a.email}]}],
        "rules": [
            {
                "name": "r",
                "enabled": True,
                "sources": ["web"],
                "pool": "p",
                "initial_activity": "new_lead",
            }
        ],
    }
    with django_capture_on_commit_callbacks(execute=True):
        config_apply(cfg, dry_run=True)
    lead.refresh_from_db()
    assert lead.owner is None and not Rule.objects.exists()


def test_an_agents_schedule_is_set_by_name_from_the_same_file_and_exported():
    from accounts.models import AgentProfile

    config_apply(load_text(SETUP))
    assert AgentProfile.objects.get(user__email="ben@example.com").schedule.name == "office"
    assert AgentProfile.objects.get(user__email="ava@example.com").schedule is None
    exported = yaml.safe_load(config_export())
    ben = next(a for a in exported["agents"] if a["email"] == "ben@example.com")
    assert ben["schedule"] == "office"
    report = config_apply(
        {"agents": [{"email": "ben@example.com", "name": "Ben", "schedule": None}]}
    )
    assert report.counts["agents"].changed == 1 and report.counts["agents"].unchanged == 0
    assert AgentProfile.objects.get(user__email="ben@example.com").schedule is None


def test_an_agent_schedule_that_does_not_exist_names_the_key():
    with pytest.raises(ConfigError) as err:
        config_apply({"agents": [{"email": "cy@example.com", "schedule": "night"}]})
    assert "agents[0].schedule: no schedule 'night'" in str(err.value)
