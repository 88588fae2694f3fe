"""Reads for distribution: what the API and pages show."""

from __future__ import annotations

from typing import Any

from leads.models import Lead


def outbound_for_lead(lead: Lead) -> list[dict[str, Any]]:
    """The lead's outbound leads (the marketplace issue adds them)."""
    return []


def rule_name_for_lead(lead: Lead) -> str | None:
    """The rule that routed the lead, if any."""
    return None


def lead_offered_to(lead: Lead, user: Any) -> bool:
    """Whether the agent holds an open offer for the lead (the routing issue adds offers)."""
    return False
