"""Distribution state: routing (pools, rules, offers), marketplace (workflows, windows,
outbound leads) and the history of every attempt."""

from __future__ import annotations

from .history import DistributionAttempt

__all__ = ["DistributionAttempt"]
