"""The marketplace: sell inbound leads to buyer contracts (seed 000).

The only writer of workflows' runtime state: outbound leads, windows and their history.
Decisions come from `distribution.engine.marketplace` (and the batch optimiser); these modules
load snapshots in a bounded number of queries, lock what they must (the lead row, then the
chosen contract rows in id order), persist and record a `DistributionAttempt` for every
attempt, by the system or by a manager. One module per concern: sale (selection on arrival),
windows, manual (manual distribution and cherry-pick), returns, contracts, batch; state and
history are the helpers they share.
"""

from __future__ import annotations

from .batch import workflow_allocate_batch
from .contracts import contract_pause, contract_resume
from .manual import lead_cherry_pick, lead_distribute_manually
from .returns import outbound_return_approve, outbound_return_deny, outbound_return_request
from .sale import lead_distribute_marketplace, leads_distribute_marketplace_pending
from .windows import (
    window_edit,
    window_open,
    window_pause,
    window_recheck,
    window_resume,
    window_stop,
    windows_recheck_due,
)

__all__ = [
    "contract_pause",
    "contract_resume",
    "lead_cherry_pick",
    "lead_distribute_manually",
    "lead_distribute_marketplace",
    "leads_distribute_marketplace_pending",
    "outbound_return_approve",
    "outbound_return_deny",
    "outbound_return_request",
    "window_edit",
    "window_open",
    "window_pause",
    "window_recheck",
    "window_resume",
    "window_stop",
    "windows_recheck_due",
    "workflow_allocate_batch",
]
