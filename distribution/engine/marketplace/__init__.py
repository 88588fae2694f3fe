"""Marketplace contract selection (seed 000): which buyer contracts receive an inbound lead.

Pure: no Django, no clock, no I/O. The services build the frozen snapshots (`types`), pass
`now` (tz-aware, in the business time zone) and a seeded `random.Random`, and persist the
returned `SelectionDecision`, which carries the full explanation.

The package, one concern a module:
- `types`: enums, reason codes, snapshots and the decision;
- `explanation`: the per-contract explanation, replayed from the rules' log;
- `geo`: bounding boxes, geodesic distances and their proven spherical bounds;
- `shares`: the share-count rule (multiplication and max_share_count), used everywhere;
- `eligibility`: scalar eligibility, contract by contract;
- `table`: `ContractTable`, the same eligibility vectorised over compiled contracts;
- `subsets`: the exact best subset (matroid / min-cost-flow matching);
- `selection`: `select_contracts`, the rules' orders and the decision;
- `manual`: `check_manual_selection`, a manager's choice within the hard limits;
- `optimizer`: the batch-optimal allocation of many waiting leads (HiGHS).
"""

from __future__ import annotations

from distribution.engine.marketplace.eligibility import contract_eligibility, eligible_contracts
from distribution.engine.marketplace.explanation import Explanation
from distribution.engine.marketplace.geo import (
    BoundingBox,
    bounding_box,
    distance_km,
    nearest_location_km,
)
from distribution.engine.marketplace.manual import check_manual_selection
from distribution.engine.marketplace.selection import select_contracts
from distribution.engine.marketplace.shares import remaining_room
from distribution.engine.marketplace.subsets import SubsetItem, best_subset
from distribution.engine.marketplace.table import ContractTable
from distribution.engine.marketplace.types import (
    CandidateExplanation,
    CapLimits,
    CapUsage,
    ChosenContract,
    ContractSnapshot,
    DeliverySchedule,
    InboundLeadSnapshot,
    LocationPoint,
    OutboundRecord,
    Reason,
    RuleOutcome,
    SelectionDecision,
    SelectionMode,
    SelectionRuleSnapshot,
    WeeklyInterval,
    WorkflowSnapshot,
)

__all__ = [
    "BoundingBox",
    "CandidateExplanation",
    "CapLimits",
    "CapUsage",
    "ChosenContract",
    "ContractSnapshot",
    "ContractTable",
    "DeliverySchedule",
    "Explanation",
    "InboundLeadSnapshot",
    "LocationPoint",
    "OutboundRecord",
    "Reason",
    "RuleOutcome",
    "SelectionDecision",
    "SelectionMode",
    "SelectionRuleSnapshot",
    "SubsetItem",
    "WeeklyInterval",
    "WorkflowSnapshot",
    "best_subset",
    "bounding_box",
    "check_manual_selection",
    "contract_eligibility",
    "distance_km",
    "eligible_contracts",
    "nearest_location_km",
    "remaining_room",
    "select_contracts",
]
