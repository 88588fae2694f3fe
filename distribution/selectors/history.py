"""Reads of the distribution history: every candidate of an attempt, decoded from its
compact form (`DistributionAttempt.all_candidates`, written by `services.history` and
`services.marketplace.history`) only when a page shows it, and "why not me?" for one agent
or contract."""

from __future__ import annotations

import base64
from array import array
from collections.abc import Callable, Iterator
from typing import Any

from accounts.models import User
from crm.models import Contract, Location
from distribution.engine.marketplace.geo import distance_km
from distribution.engine.marketplace.labels import reason_label
from distribution.engine.marketplace.types import LocationPoint, Reason
from distribution.models import DistributionAttempt, OutboundLead

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

    def __init__(
        self,
        attempt: DistributionAttempt,
        explain: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    ) -> None:
        self._attempt = attempt
        self._explain = explain
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        return attempt_candidate_count(self._attempt)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._rows is None:
            rows = attempt_candidates(self._attempt)
            self._rows = self._explain(rows) if self._explain and is_contract_rows(rows) else rows
        return iter(self._rows)

    def __bool__(self) -> bool:
        return len(self) > 0


# --- the marketplace's lines in words ----------------------------------------------------

MODE_LABELS = {
    "qs": "quality score",
    "random": "random",
    "round_robin": "round robin",
    "distance": "nearest first",
    "free_trial": "free trials first",
    "turnover": "highest turnover",
    "lead_count": "fewest leads",
}


def is_contract_rows(rows: list[dict[str, Any]]) -> bool:
    """True when ROWS are marketplace lines (contracts), not agent routing ones."""
    return any("contract_id" in row for row in rows)


def explain_contracts(
    rows: list[dict[str, Any]], *, lead: Any, outbound: list[OutboundLead] | None = None
) -> list[dict[str, Any]]:
    """ROWS (contract lines of one attempt) in words: each gets `chosen`, `reason_text` (the
    reason's label; the service area with distance and radius), and for a chosen one its
    `price` and `delivery` (the outbound lead's status) when OUTBOUND holds its sale."""
    ids = {int(r["contract_id"]) for r in rows if r.get("contract_id") is not None}
    contracts = {
        c["pk"]: c
        for c in Contract.objects.filter(pk__in=ids).values(
            "pk", "name", "company_id", "company__name", "price", "radius_km"
        )
    }
    located = lead is not None and lead.latitude is not None and lead.longitude is not None
    far = {
        contracts[r["contract_id"]]["company_id"]
        for r in rows
        if r.get("reason") == Reason.OUT_OF_SERVICE_AREA
        and r.get("distance_km") is None
        and r.get("contract_id") in contracts
    }
    places: dict[int, list[LocationPoint]] = {}
    if located and far:
        for company_id, lat, lon in Location.objects.filter(company_id__in=far).values_list(
            "company_id", "latitude", "longitude"
        ):
            places.setdefault(company_id, []).append(LocationPoint(lat, lon))
    sales = {o.contract_id: o for o in outbound or []}
    out = []
    for row in rows:
        row = dict(row)
        info = contracts.get(row.get("contract_id"))  # type: ignore[arg-type]
        if info is not None:
            row["contract"] = row.get("contract") or info["name"]
            row["company"] = row.get("company") or info["company__name"]
        elif not row.get("contract"):
            row["contract"] = f"contract #{row.get('contract_id')}"
        reason = row.get("reason")
        row["chosen"] = reason is None
        distance = row.get("distance_km")
        radius = info["radius_km"] if info is not None else None
        if reason == Reason.OUT_OF_SERVICE_AREA and distance is None and info is not None:
            points = places.get(info["company_id"], [])
            if points:
                distance = min(distance_km(lead.latitude, lead.longitude, p) for p in points)
                row["distance_km"] = round(distance, 1)
        row["reason_text"] = reason_label(
            reason, distance_km=distance, radius_km=radius, lead_located=located
        )
        row["note_text"] = reason_label(row.get("note"))
        if row["chosen"]:
            sale = sales.get(row.get("contract_id"))  # type: ignore[arg-type]
            row["price"] = sale.price if sale is not None else (info["price"] if info else None)
            row["delivery"] = sale.get_status_display() if sale is not None else None
        out.append(row)
    return out


def rule_lines(
    rules_tried: list[Any], candidates: list[dict[str, Any]] | None = None
) -> list[dict[str, str]]:
    """An attempt's "rules tried" as lines a manager reads: `mark` (✔ matched or chose, ✘
    did not, – chose nothing, "" for a summary), `rule` and `text`. Marketplace rules say
    which contracts they chose; the reason summary is a line of its own, not a rule."""
    companies = {
        str(c.get("contract")): str(c.get("company") or "")
        for c in candidates or []
        if c.get("contract")
    }

    def named(name: str) -> str:
        company = companies.get(name)
        return f"{name} ({company})" if company else name

    lines = []
    for r in rules_tried or []:
        if not isinstance(r, dict):
            continue
        if "summary" in r:
            counts = r.get("summary") or {}
            text = ", ".join(f"{n} {reason_label(k) or k}" for k, n in counts.items())
            before, after = r.get("outbound_before"), r.get("outbound_after")
            if before is not None and after is not None:
                text += f"; outbound leads {before} → {after}"
            lines.append({"mark": "", "rule": "Contracts", "text": text})
        elif "batch" in r:
            lines.append(
                {
                    "mark": "✔",
                    "rule": f"batch allocation ({r.get('batch')}, {r.get('status')})",
                    "text": f"over {r.get('leads')} waiting lead(s)",
                }
            )
        elif "mode" in r:
            chosen = [named(str(n)) for n in r.get("chosen") or []]
            mode = MODE_LABELS.get(str(r.get("mode")), str(r.get("mode")))
            rule = f"{r.get('rule', '')} ({mode}, take {r.get('take')})"
            considered = f"{r.get('considered', 0)} considered"
            if r.get("skipped"):
                text = reason_label(r.get("reason") or "rule_skipped_min_turnover")
                if chosen:
                    text += " — would have chosen " + ", ".join(chosen)
                lines.append({"mark": "✘", "rule": rule, "text": f"{text}; {considered}"})
            elif chosen:
                lines.append(
                    {
                        "mark": "✔",
                        "rule": rule,
                        "text": f"chose {', '.join(chosen)} (turnover {r.get('turnover')}); "
                        f"{considered}",
                    }
                )
            else:
                text = reason_label(r.get("reason")) or "chose no contract"
                lines.append({"mark": "–", "rule": rule, "text": text})
        else:  # agent routing: the rule matched or why not
            matched = bool(r.get("matched"))
            text = "" if matched else " ".join(str(r.get(k) or "") for k in ("reason", "detail"))
            lines.append(
                {"mark": "✔" if matched else "✘", "rule": str(r.get("rule", "")), "text": text}
            )
    return lines


def attempt_sales(
    attempts: list[DistributionAttempt], outbound: list[OutboundLead]
) -> dict[int, list[OutboundLead]]:
    """Which of the lead's OUTBOUND leads each attempt sold: an outbound lead belongs to the
    latest attempt at or before it that chose its contract (by attempt id)."""
    ordered = sorted(attempts, key=lambda a: (a.created_at, a.pk))
    chosen = {
        a.pk: {
            c.get("contract_id")
            for c in a.candidates or []
            if isinstance(c, dict) and c.get("reason") is None
        }
        for a in ordered
    }
    sales: dict[int, list[OutboundLead]] = {}
    for o in outbound:
        owner = None
        for a in ordered:
            if a.created_at > o.created_at:
                break
            if o.contract_id in chosen[a.pk]:
                owner = a
        if owner is not None:
            sales.setdefault(owner.pk, []).append(o)
    return sales


def attempt_lines(
    attempt: DistributionAttempt, rows: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """ROWS (default: the attempt's stored lines) read in words: contract lines explained
    (`explain_contracts`) with the outbound lead each chosen contract got from this attempt
    (the first of the lead's outbound leads to that contract at or after it); agent lines
    as they are."""
    if rows is None:
        rows = [c for c in attempt.candidates or [] if isinstance(c, dict)]
    if not is_contract_rows(rows):
        return rows
    chosen = {r["contract_id"] for r in rows if r.get("reason") is None and "contract_id" in r}
    first: dict[int, OutboundLead] = {}
    if chosen:
        for o in OutboundLead.objects.filter(
            lead_id=attempt.lead_id, contract_id__in=chosen, created_at__gte=attempt.created_at
        ).order_by("created_at", "id"):
            first.setdefault(o.contract_id, o)
    return explain_contracts(rows, lead=attempt.lead, outbound=list(first.values()))
