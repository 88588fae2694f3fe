"""The only writers of distribution state (see CONVENTIONS: services write, selectors read)."""

from __future__ import annotations

from .distribute import lead_distribute
from .marketplace.batch import workflow_allocate_batch
from .marketplace.contracts import contract_pause, contract_resume
from .marketplace.delivery import deliver_pending, outbound_deliver, outbound_test_send
from .marketplace.manual import lead_cherry_pick, lead_distribute_manually
from .marketplace.returns import (
    outbound_return_approve,
    outbound_return_deny,
    outbound_return_request,
)
from .marketplace.sale import lead_distribute_marketplace
from .marketplace.windows import (
    window_edit,
    window_open,
    window_pause,
    window_recheck,
    window_resume,
    window_stop,
    windows_recheck_due,
)
from .queueing import (
    lead_dispatch,
    lead_queue_distribution,
    leads_distribute_pending,
    leads_requeue_stale,
)

__all__ = [
    "contract_pause",
    "contract_resume",
    "deliver_pending",
    "lead_cherry_pick",
    "lead_dispatch",
    "lead_distribute",
    "lead_distribute_manually",
    "lead_distribute_marketplace",
    "lead_queue_distribution",
    "leads_distribute_pending",
    "leads_requeue_stale",
    "outbound_deliver",
    "outbound_return_approve",
    "outbound_return_deny",
    "outbound_return_request",
    "outbound_test_send",
    "window_edit",
    "window_open",
    "window_pause",
    "window_recheck",
    "window_resume",
    "window_stop",
    "windows_recheck_due",
    "workflow_allocate_batch",
]
