"""Distribution state: routing (pools, rules, offers), marketplace (workflows, windows,
outbound leads) and the history of every attempt."""

from __future__ import annotations

from .history import DistributionAttempt
from .marketplace import (
    OPEN_WINDOW_STATUSES,
    DistributionWindow,
    MarketVersion,
    OutboundLead,
    OutboundMethod,
    ReturnStatus,
    SelectionMode,
    SelectionRule,
    WindowStatus,
    Workflow,
    WorkflowMode,
)
from .notify import WebhookAttempt
from .routing import (
    AfterHours,
    Assignment,
    Automation,
    Holiday,
    InitialStatus,
    Notice,
    Offer,
    PerformanceTier,
    Pool,
    PoolMember,
    Rule,
    Schedule,
    ScheduleInterval,
    Strategy,
)

__all__ = [
    "OPEN_WINDOW_STATUSES",
    "AfterHours",
    "Assignment",
    "Automation",
    "DistributionAttempt",
    "DistributionWindow",
    "Holiday",
    "InitialStatus",
    "MarketVersion",
    "Notice",
    "Offer",
    "OutboundLead",
    "OutboundMethod",
    "PerformanceTier",
    "Pool",
    "PoolMember",
    "ReturnStatus",
    "Rule",
    "Schedule",
    "ScheduleInterval",
    "SelectionMode",
    "SelectionRule",
    "Strategy",
    "WebhookAttempt",
    "WindowStatus",
    "Workflow",
    "WorkflowMode",
]
