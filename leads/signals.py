"""Signals the leads app sends; other apps act on them (leads knows nothing of routing)."""

from __future__ import annotations

from django.dispatch import Signal

# A manager changed a lead by hand (the admin form). Arguments: lead_id, trigger
# ("updated", or "status_changed" when the status was among the changes), actor.
lead_changed = Signal()

# A new lead was stored and waits for distribution (sent inside the ingesting transaction,
# not for imports asked not to queue). Arguments: lead_id, bulk (True for a CSV row: it
# waits in the bulk lane, behind no live lead), campaign_id (None without a campaign). The
# distributing app queues it after commit.
lead_awaits_distribution = Signal()
