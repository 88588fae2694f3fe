"""Rule matching: priority order, sources, campaign, filters, and why earlier rules failed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from distribution.engine.routing import match_rule, route_lead
from distribution.engine.types import (
    AgentSnapshot,
    Filter,
    LeadSnapshot,
    MemberSnapshot,
    RuleSnapshot,
)

NOW = datetime(2024, 6, 3, 10, tzinfo=UTC)


def lead(source: str | None = "web", campaign: str | None = None, **fields: object) -> LeadSnapshot:
    return LeadSnapshot(id=7, source=source, campaign=campaign, created_at=NOW, fields=fields)


def rule(rule_id: int, name: str, priority: int = 100, **kw: object) -> RuleSnapshot:
    kw.setdefault("strategy", "round_robin")
    return RuleSnapshot(id=rule_id, name=name, priority=priority, **kw)  # type: ignore[arg-type]


def test_lowest_priority_number_first_then_name() -> None:
    rules = [rule(1, "b", 10), rule(2, "a", 10), rule(3, "z", 1)]
    match = match_rule(lead(), rules)
    assert match.rule is not None and match.rule.id == 3
    assert [t.rule_name for t in match.tried] == ["z"]
    tie = match_rule(lead(), [rule(1, "b", 10), rule(2, "a", 10)])
    assert tie.rule is not None and tie.rule.name == "a"


def test_sources_campaign_and_filters_all_must_match_and_failures_are_explained() -> None:
    rules = [
        rule(1, "zillow only", 1, sources=frozenset({"zillow"})),
        rule(2, "solar campaign", 2, campaign="solar"),
        rule(3, "big companies", 3, filters=(Filter("company_size", "gte", 100),)),
        rule(4, "off", 4, enabled=False),
        rule(5, "catch all", 5),
        rule(6, "never reached", 6),
    ]
    match = match_rule(lead(source="web", campaign="wind", company_size=20), rules)
    assert match.rule is not None and match.rule.name == "catch all"
    assert [(t.rule_name, t.matched, t.reason) for t in match.tried] == [
        ("zillow only", False, "source_mismatch"),
        ("solar campaign", False, "campaign_mismatch"),
        ("big companies", False, "filter_mismatch"),
        ("off", False, "rule_disabled"),
        ("catch all", True, None),
    ]
    assert match.tried[2].detail == "company_size gte 100 (lead: 20)"
    assert "web" in match.tried[0].detail


def test_empty_sources_mean_any_source_and_source_match_ignores_case() -> None:
    assert match_rule(lead(source=None), [rule(1, "any")]).rule is not None
    picky = rule(1, "zillow", sources=frozenset({"Zillow"}))
    assert match_rule(lead(source="zillow"), [picky]).rule is not None
    assert match_rule(lead(source=None), [picky]).rule is None


def test_assignment_rule_criteria_company_size_location_name() -> None:
    # Seed 004: assignment rules by company size, location or name, combined with a strategy.
    key_accounts = rule(
        1,
        "major accounts NL",
        1,
        filters=(
            Filter("company_size", "gte", 500),
            Filter("country", "eq", "NL"),
            Filter("company_name", "contains", "bank"),
        ),
        strategy="performance",
    )
    match = match_rule(
        lead(company_size="1200", country="nl", company_name="ING Bank"), [key_accounts]
    )
    assert match.rule is key_accounts


def test_no_matching_rule_sends_the_lead_to_the_lead_assignment_queue() -> None:
    decision = route_lead(
        lead(source="csv"),
        [rule(1, "web", sources=frozenset({"web"})), rule(2, "off", enabled=False)],
        {},
        NOW,
    )
    assert decision.outcome == "queue_unassigned"
    assert decision.status == "unassigned"
    assert decision.reason_code == "no_rule_matched"
    assert decision.rule_id is None
    assert [t.reason for t in decision.rules_tried] == ["rule_disabled", "source_mismatch"]


def test_route_lead_uses_the_matched_rules_pool() -> None:
    ann = MemberSnapshot(id=11, agent=AgentSnapshot(id=1, email="ann@example.com"))
    bob = MemberSnapshot(id=21, agent=AgentSnapshot(id=2, email="bob@example.com"))
    rules = [rule(1, "solar", 1, campaign="solar", pool_id=100), rule(2, "rest", 2, pool_id=200)]
    decision = route_lead(lead(campaign="solar"), rules, {100: [ann], 200: [bob]}, NOW)
    assert decision.rule_name == "solar"
    assert decision.assignee is not None and decision.assignee.email == "ann@example.com"
    other = route_lead(lead(campaign="wind"), rules, {100: [ann], 200: [bob]}, NOW)
    assert other.assignee is not None and other.assignee.email == "bob@example.com"
    assert [t.matched for t in other.rules_tried] == [False, True]
    assert other.to_dict()["rules_tried"] == [t.to_dict() for t in other.rules_tried]


def test_invalid_rule_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        rule(1, "x", strategy="lottery")
    with pytest.raises(ValueError):
        rule(1, "x", after_hours="panic")
    with pytest.raises(ValueError):
        rule(1, "x", max_rounds=0)
