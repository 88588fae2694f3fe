"""Reads for distribution (what the API, pages and admin show)."""

from __future__ import annotations

from .marketplace import outbound_for_lead
from .routing import lead_hold, lead_offered_to, rule_name_for_lead

__all__ = ["lead_hold", "lead_offered_to", "outbound_for_lead", "rule_name_for_lead"]
