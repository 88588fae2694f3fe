"""Reads for leads: the API's lead document and who may read a lead.

Other apps add their parts of the document (e.g. distribution: rule, outbound) and their
readers (e.g. an agent offered the lead) through `lead_document_part_add` and
`lead_reader_add`, called from their AppConfig.ready — leads imports none of them. A part
may declare what it answers for a lead just stored (`new_lead_answer`): the 201 of a POST
then costs no query for it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from leads.models import Lead, Source

DocumentPart = Callable[[Lead], dict[str, Any]]
ReaderCheck = Callable[[Lead, Any], bool]

DOCUMENT_PARTS: list[DocumentPart] = []
READER_CHECKS: list[ReaderCheck] = []


def lead_document_part_add(part: DocumentPart) -> None:
    """Add keys to every lead document (once per function, in the order added)."""
    if part not in DOCUMENT_PARTS:
        DOCUMENT_PARTS.append(part)


def new_lead_answer(answer: dict[str, Any]) -> Callable[[DocumentPart], DocumentPart]:
    """Declare a part's keys for a lead just stored, before anything else touched it (no
    owner, rule or offers yet): `lead_document(lead, new=True)` uses them instead of
    calling the part."""

    def declare(part: DocumentPart) -> DocumentPart:
        part.new_lead_answer = answer  # type: ignore[attr-defined]
        return part

    return declare


def lead_reader_add(check: ReaderCheck) -> None:
    """Let `check(lead, reader)` grant a reader that neither owns the lead nor sent it."""
    if check not in READER_CHECKS:
        READER_CHECKS.append(check)


def lead_get_for_api(*, lead_id: int) -> Lead | None:
    return Lead.objects.select_related("owner", "source", "campaign").filter(pk=lead_id).first()


def lead_document(lead: Lead, *, new: bool = False) -> dict[str, Any]:
    """The public shape of a lead (DESIGN §7); the other apps' parts follow `owner`.

    NEW: the lead was stored by this very request (a POST's 201): the parts that declared
    their `new_lead_answer` are not asked (their answer is known), so the document costs no
    query when the lead's source and campaign are loaded."""
    document: dict[str, Any] = {
        "id": lead.pk,
        "status": lead.status,
        "owner": lead.owner.email if lead.owner_id and lead.owner else None,
    }
    for part in DOCUMENT_PARTS:
        answer = getattr(part, "new_lead_answer", None) if new else None
        document.update(copy.deepcopy(answer) if answer is not None else part(lead))
    document.update(
        {
            "created_at": lead.created_at,
            "external_id": lead.external_id or None,
            "source": lead.source.slug if lead.source_id and lead.source else None,
            "campaign": lead.campaign.slug if lead.campaign_id and lead.campaign else None,
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "email": lead.email,
            "phone": lead.phone,
            "duplicate_of": lead.duplicate_of_id,
        }
    )
    return document


def lead_visible_to(lead: Lead, reader: Any) -> bool:
    """A source reads its own leads; an agent reads leads it owns or is offered."""
    if isinstance(reader, Source):
        return lead.source_id == reader.pk
    if lead.owner_id == getattr(reader, "pk", None):
        return True
    return any(check(lead, reader) for check in READER_CHECKS)
