"""Distribution's parts of the API's lead document (DESIGN §7) and who else may read a lead.

Connected to `leads.selectors` in DistributionConfig.ready: leads builds the document and
asks these functions for the rest, without importing distribution.
"""

from __future__ import annotations

from typing import Any

from distribution import selectors
from leads.models import Lead
from leads.selectors import new_lead_answer


# a lead just stored was routed by no rule and sold to no contract
@new_lead_answer({"rule": None, "outbound": [], "held_until": None, "held_reason": None})
def lead_document_part(lead: Lead) -> dict[str, Any]:
    """The rule that routed the lead, its outbound (sold) copies, and for a held lead until
    when and why it waits (null otherwise)."""
    hold = selectors.lead_hold(lead)
    return {
        "rule": selectors.rule_name_for_lead(lead),
        "outbound": selectors.outbound_for_lead(lead),
        "held_until": hold["until"] if hold else None,
        "held_reason": hold["reason"] if hold else None,
    }


def lead_offered_to(lead: Lead, reader: Any) -> bool:
    """An agent holding an open offer for the lead may read it."""
    return selectors.lead_offered_to(lead, reader)
