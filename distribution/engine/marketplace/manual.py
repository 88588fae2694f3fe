"""The manual check: a manager's chosen contracts, accepted as far as hard limits allow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from distribution.engine.marketplace.eligibility import LeadContext, check_contract, holds_lead
from distribution.engine.marketplace.explanation import Event, Ranked
from distribution.engine.marketplace.selection import LeadState, build_decision
from distribution.engine.marketplace.types import (
    ZERO,
    ContractSnapshot,
    InboundLeadSnapshot,
    Reason,
    SelectionDecision,
    SelectionRuleSnapshot,
    WorkflowSnapshot,
)

# Reasons that block a manual distribution; the other eligibility reasons are advisory there.
_MANUAL_HARD = frozenset(
    {
        Reason.INACTIVE,
        Reason.ALREADY_RECEIVED,
        Reason.COMPANY_ALREADY_SELECTED,
        Reason.SHARE_COUNT_EXCEEDED,
        Reason.MULTIPLICATION_REACHED,
    }
)


def check_manual_selection(
    lead: InboundLeadSnapshot,
    contracts: Sequence[ContractSnapshot],
    workflow: WorkflowSnapshot,
    now: datetime,
) -> SelectionDecision:
    """Accept a manager's chosen contracts, in the given order, as far as hard limits allow.

    1. A contract is refused when inactive, when its company or group already has the lead
       (or was accepted just before), or when one more outbound lead would break the
       workflow's max_multiplication or a max_share_count (existing holders, the contract,
       the contracts accepted before it).
    2. Softer eligibility findings (caps, dates, hours, area, campaign, …) do not block a
       manual distribution; they come back as the line's `note` so the page can warn.
    Cherry-picking is not this: it bypasses every check and is not counted by the services.
    """
    ctx = LeadContext(lead, now)
    contracts = tuple(contracts)
    state = LeadState.initial(lead, workflow)
    notes: dict[int, Reason] = {}
    base: list[Reason | None] = [None] * len(contracts)
    accepted: list[tuple[int, SelectionRuleSnapshot | None]] = []
    refused: list[int] = []
    for idx, c in enumerate(contracts):
        why: Reason | None
        if not c.active:
            why = Reason.INACTIVE
        elif holds_lead(c, lead):
            why = Reason.ALREADY_RECEIVED
        elif state.conflicts(c):
            why = Reason.COMPANY_ALREADY_SELECTED
        else:
            why = state.refusal(c)
        base[idx] = why
        if why is not None:
            refused.append(idx)
            continue
        soft = check_contract(c, ctx)
        if soft is not None and soft not in _MANUAL_HARD and soft is not Reason.NO_CAMPAIGN:
            notes[idx] = soft
        state.add(c)
        accepted.append((idx, None))
    turnover = sum((contracts[i].price for i, _ in accepted), ZERO)
    reason = None if accepted else Reason.NOTHING_SELECTED
    log: list[Event] = [Ranked(range(len(contracts)), base, 1, None)]
    return build_decision(
        lead, contracts, ctx, base, log, [], refused, accepted, [], turnover, reason, notes
    )
