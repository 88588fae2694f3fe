"""The share-count rule, once: how many outbound leads a lead may end with.

A lead sold to n buyers has n (non-cherry-picked) outbound leads. Every contract that holds
it, or is about to, names the most holders it accepts (`max_share_count`), and the
campaign workflow caps the count too (`max_multiplication`, None: no cap). So the lead may
end with at most the smallest of these: with `count` outbound leads it may take one more
contract only when `count + 1` is within the workflow's multiplication, the share count of
every existing holder and the share count of the new contract itself.

Scalar eligibility, the compiled table (these functions work on numpy arrays too), the
orders of selection, the exact best subset, the manual check and the batch optimiser all
decide with the functions below.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:
    from distribution.engine.marketplace.types import InboundLeadSnapshot, WorkflowSnapshot

# A limit that never binds (no max_multiplication, no holder).
NO_LIMIT = sys.maxsize


def holders_limit(holder_max_share_counts: Iterable[int]) -> int | None:
    """The smallest max_share_count among the contracts holding a lead (None: no holder)."""
    return min(holder_max_share_counts, default=None)


def outbound_limit(max_multiplication: int | None, holder_max_share_counts: Iterable[int]) -> int:
    """The most outbound leads a lead may end with: the workflow's max_multiplication and
    the share counts of the contracts already holding it."""
    limit = NO_LIMIT if max_multiplication is None else max_multiplication
    share = holders_limit(holder_max_share_counts)
    return limit if share is None else min(limit, share)


@overload
def tolerates(max_share_count: int, count_after: int) -> bool: ...
@overload
def tolerates(max_share_count: np.ndarray[Any, Any], count_after: int) -> np.ndarray[Any, Any]: ...
def tolerates(max_share_count: Any, count_after: int) -> Any:
    """True when a contract (or a limit) accepts the lead ending with `count_after`
    outbound leads; elementwise for a numpy array of share counts."""
    return count_after <= max_share_count


def sizes_tolerated(max_share_count: int, count: int) -> int:
    """How many new outbound leads (itself included) a contract accepts on a lead that has
    `count`: the final sizes k with `tolerates(max_share_count, count + k)`."""
    return max_share_count - count


def multiplication_reached(count: int, max_multiplication: int | None) -> bool:
    """True when a lead with `count` outbound leads is full by the workflow's
    multiplication (a full lead that is not is full by a share count)."""
    return max_multiplication is not None and count >= max_multiplication


def lead_limit(lead: InboundLeadSnapshot, workflow: WorkflowSnapshot) -> int:
    """`outbound_limit` of a lead under a workflow."""
    return outbound_limit(workflow.max_multiplication, lead.holder_max_share_counts)


def remaining_room(lead: InboundLeadSnapshot, workflow: WorkflowSnapshot) -> int:
    """How many more outbound leads the lead may get (multiplication and share counts)."""
    return max(0, lead_limit(lead, workflow) - lead.outbound_count)
