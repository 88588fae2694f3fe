"""Distribution state: routing (pools, rules, offers), marketplace (workflows, windows,
outbound leads) and the history of every attempt."""

from __future__ import annotations

from .delivery import DeliveryAttempt
from .geo import GeoPlace, PlaceSource, PostalCode
from .history import DistributionAttempt
from .marketplace import (
    OPEN_WINDOW_STATUSES,
    DeliveryStatus,
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
    METRICS_WINDOW,
    AfterHours,
    Assignment,
    Automation,
    Holiday,
    InitialStatus,
    Notice,
    Offer,
    Organisation,
    PerformanceTier,
    Pool,
    PoolMember,
    Rule,
    Schedule,
    ScheduleInterval,
    Strategy,
)

__all__ = [
    "METRICS_WINDOW",
    "OPEN_WINDOW_STATUSES",
    "AfterHours",
    "Assignment",
    "Automation",
    "DeliveryAttempt",
    "DeliveryStatus",
    "DistributionAttempt",
    "DistributionWindow",
    "GeoPlace",
    "Holiday",
    "InitialStatus",
    "MarketVersion",
    "Notice",
    "Offer",
    "Organisation",
    "OutboundLead",
    "OutboundMethod",
    "PerformanceTier",
    "PlaceSource",
    "Pool",
    "PoolMember",
    "PostalCode",
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
