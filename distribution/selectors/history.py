"""Reads of the distribution history: every candidate of an attempt, decoded from its
compact form (`DistributionAttempt.all_candidates`, written by `services.history` and
`services.marketplace.history`) only when a page shows it, and "why not me?" for one agent
or contract."""

from __future__ import annotations

import base64
from array import array
from collections.abc import Iterator
from typing import Any

from accounts.models import User
from crm.models import Contract
from distribution.models import DistributionAttempt

_NONE = float("inf")


def unpack_columns(doc: dict[str, Any], count: int) -> list[list[int]]:
    """The COUNT integer columns packed by `services.history.pack_columns`."""
    values = array(str(doc.get("t") or "i"))
    values.frombytes(base64.b64decode(doc.get("cols") or ""))
    n = int(doc.get("n") or 0)
    flat = values.tolist()
    return [flat[k * n : (k + 1) * n] for k in range(count)]


def _agent_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    ids, members, ranks, reasons, details = unpack_columns(doc, 5)
    emails = dict(User.objects.filter(pk__in=set(ids)).values_list("pk", "email"))
    codes: list[str] = doc.get("codes") or []
    texts: list[str] = doc.get("details") or []
    default = doc.get("default")
    rows = []
    for i, (agent_id, member_id, rank, reason, text) in enumerate(
        zip(ids, members, ranks, reasons, details, strict=True)
    ):
        detail = "" if text < 0 else texts[text]
        if i == default:
            detail = "default agent" + (f": {detail}" if detail else "")
        rows.append(
            {
                "agent_id": agent_id,
                "agent": emails.get(agent_id, f"agent #{agent_id}"),
                "member_id": None if member_id < 0 else member_id,
                "rank": None if rank < 0 else rank,
                "reason": None if reason < 0 else codes[reason],
                "detail": detail,
            }
        )
    return rows


def _contract_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    ids, reasons, ranks, rules = unpack_columns(doc, 4)
    names = {
        pk: (name, company)
        for pk, name, company in Contract.objects.filter(pk__in=set(ids)).values_list(
            "pk", "name", "company__name"
        )
    }
    codes: list[str] = doc.get("codes") or []
    chosen = {cid: n for n, cid in enumerate(doc.get("chosen") or [])}
    distances: dict[str, float] = doc.get("distance_km") or {}
    notes: dict[str, str] = doc.get("note") or {}
    rows = []
    for i, (cid, reason, rank, rule) in enumerate(zip(ids, reasons, ranks, rules, strict=True)):
        name, company = names.get(cid, (f"contract #{cid}", ""))
        rows.append(
            {
                "contract_id": cid,
                "contract": name,
                "company": company,
                "rank": None if rank < 0 else rank,
                "rule": None if rule < 0 else rule,
                "reason": codes[reason] or None,
                "note": notes.get(str(i)),
                "distance_km": distances.get(str(i)),
            }
        )

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        # as Explanation.lines: chosen in selection order, the other ranked by (rule, rank,
        # id), then the unranked by id
        if row["contract_id"] in chosen:
            return (0, chosen[row["contract_id"]], 0, 0)
        rule, rank = row["rule"], row["rank"]
        return (
            1 if rank is not None else 2,
            _NONE if rule is None else rule,
            _NONE if rank is None else rank,
            row["contract_id"],
        )

    rows.sort(key=order)
    return rows


def attempt_candidates(attempt: DistributionAttempt) -> list[dict[str, Any]]:
    """Every candidate of ATTEMPT with its reason: agents (agent, rank, reason, detail) for
    agent routing, contracts (contract, company, rule, rank, reason, note, distance_km) for
    the marketplace. An attempt stored before every candidate was kept has its stored lines."""
    doc = attempt.all_candidates
    if not isinstance(doc, dict) or "v" not in doc:
        return [c for c in attempt.candidates or [] if isinstance(c, dict)]
    if doc.get("kind") == "contracts":
        return _contract_rows(doc)
    return _agent_rows(doc)


def attempt_candidate_count(attempt: DistributionAttempt) -> int:
    """How many candidates ATTEMPT considered (every one is kept), without decoding them."""
    doc = attempt.all_candidates
    if not isinstance(doc, dict) or "v" not in doc:
        return len(attempt.candidates or [])
    return int(doc.get("n") or 0)


def why_not(attempt: DistributionAttempt, who: str) -> list[dict[str, Any]]:
    """The lines of ATTEMPT about WHO (an agent's e-mail or a contract's or company's name,
    case-insensitive): why it was, or was not, chosen."""
    needle = who.strip().lower()
    if not needle:
        return []
    return [
        row
        for row in attempt_candidates(attempt)
        if needle
        in (
            str(row.get("agent", "")).lower(),
            str(row.get("contract", "")).lower(),
            str(row.get("company", "")).lower(),
        )
    ]


class LazyCandidates:
    """Every candidate of an attempt, decoded on first iteration (a page lists many
    attempts and opens few): iterable and sized, as templates use it."""

    def __init__(self, attempt: DistributionAttempt) -> None:
        self._attempt = attempt
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        return attempt_candidate_count(self._attempt)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._rows is None:
            self._rows = attempt_candidates(self._attempt)
        return iter(self._rows)

    def __bool__(self) -> bool:
        return len(self) > 0
