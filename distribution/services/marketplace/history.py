"""Distribution history lines of the marketplace: the stored candidates, the rules tried,
the reason histogram and the sentence a manager reads, recorded as a `DistributionAttempt`."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.utils import timezone

from distribution.engine import marketplace as engine
from distribution.engine.marketplace.labels import reason_label
from distribution.models import DistributionAttempt, Workflow
from distribution.services.history import COMPACT_VERSION, pack_columns
from leads.models import Lead

# How many readable candidate lines an attempt stores; every contract's line is kept in
# `all_candidates` (compact) and the reason histogram is always complete.
STORED_CANDIDATES = 100


def candidate_lines(
    decision: engine.SelectionDecision, names: dict[int, tuple[str, str]]
) -> list[dict[str, Any]]:
    lines = []
    for line in decision.explanation.head(STORED_CANDIDATES):
        contract, company = names.get(line.contract_id, (str(line.contract_id), ""))
        lines.append(
            {
                "contract": contract,
                "company": company,
                "contract_id": line.contract_id,
                "rank": line.rank,
                "rule": line.rule_position,
                "reason": str(line.reason) if line.reason is not None else None,
                "note": str(line.note) if line.note is not None else None,
                "distance_km": round(line.distance_km, 3) if line.distance_km is not None else None,
            }
        )
    return lines


def _packed(columns: dict[str, Any]) -> dict[str, Any]:
    """Explanation.columns with its four integer columns (contract id, reason, rank, rule)
    packed into one string (`history.pack_columns`)."""
    ints = [columns.pop(k) for k in ("contract_id", "reason", "rank", "rule")]
    typecode, packed = pack_columns(ints)
    return {
        "v": COMPACT_VERSION,
        "kind": "contracts",
        "n": len(ints[0]),
        "t": typecode,
        "cols": packed,
        **columns,
    }


def compact_lines(decision: engine.SelectionDecision) -> dict[str, Any]:
    """Every contract considered, with its reason, rank and rule: the compact document
    stored as `DistributionAttempt.all_candidates` (see Explanation.columns)."""
    return _packed(decision.explanation.columns())


def compact_offers(chosen: list[int], others: list[int], other_reason: str) -> dict[str, Any]:
    """The batch allocation's lines, compact: the CHOSEN contract ids, then the OTHERS
    (eligible offers not selected) with OTHER_REASON."""
    ids = [*chosen, *others]
    return _packed(
        {
            "contract_id": ids,
            "reason": [0] * len(chosen) + [1] * len(others),
            "rank": [-1] * len(ids),
            "rule": [-1] * len(ids),
            "codes": ["", other_reason],
            "chosen": list(chosen),
            "distance_km": {},
            "note": {},
        }
    )


def reason_histogram(decision: engine.SelectionDecision) -> dict[str, int]:
    counts = decision.explanation.reason_counts()
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def rules_tried_lines(
    decision: engine.SelectionDecision,
    workflow: Workflow | None,
    names: dict[int, tuple[str, str]],
    histogram: dict[str, int],
) -> list[dict[str, Any]]:
    tried: list[dict[str, Any]] = [
        {
            "rule": f"{r.position}. {r.mode} × {r.take}",
            "mode": str(r.mode),
            "take": r.take,
            "considered": r.considered,
            "chosen": [names.get(i, (str(i), ""))[0] for i in r.chosen_ids],
            "turnover": str(r.turnover),
            "skipped": r.skipped,
            "reason": str(r.reason) if r.reason is not None else None,
        }
        for r in decision.rules
    ]
    tried.append(
        {
            "summary": histogram,
            "workflow": workflow.campaign.slug if workflow is not None else None,
            "outbound_before": decision.outbound_count_before,
            "outbound_after": decision.outbound_count_after,
        }
    )
    return tried


REASON_TEXT = {
    "no_campaign": "The lead has no campaign: it can only be distributed manually or "
    "cherry-picked.",
    "no_selection_rules": "The workflow has no contract selection rules.",
    "no_eligible_contracts": "No contract is eligible for this lead.",
    "nothing_selected": "The selection rules chose no contract.",
    "min_contracts_not_reached": "The selection has fewer contracts than the workflow's "
    "minimum: nothing distributed.",
    "min_turnover_not_reached": "The selection turns over less than the workflow's minimum: "
    "nothing distributed.",
    "multiplication_reached": "The lead already has its maximum number of outbound leads.",
    "share_count_exceeded": "A contract holding the lead allows no more sharing.",
}


def describe_decision(
    decision: engine.SelectionDecision, names: dict[int, tuple[str, str]], histogram: dict[str, int]
) -> str:
    if decision.chosen:
        sold = ", ".join(
            names.get(c.contract_id, (str(c.contract_id), ""))[0] for c in decision.chosen
        )
        text = f"Sold to {len(decision.chosen)} contract(s): {sold} (turnover {decision.turnover})."
    else:
        code = str(decision.reason) if decision.reason else "nothing_selected"
        text = REASON_TEXT.get(code, code.replace("_", " ").capitalize() + ".")
    others = {k: v for k, v in histogram.items() if k != "chosen"}
    if others:
        text += " Others: " + ", ".join(f"{n} {reason_label(k)}" for k, n in others.items()) + "."
    return text


def attempt_record(
    *,
    lead: Lead,
    trigger: str,
    outcome: str,
    reason: str,
    started: float,
    actor: Any = None,
    candidates: list[dict[str, Any]] | None = None,
    all_candidates: dict[str, Any] | None = None,
    rules_tried: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> DistributionAttempt:
    return DistributionAttempt.objects.create(
        lead=lead,
        trigger=trigger,
        outcome=outcome,
        reason=reason,
        candidates=candidates or [],
        all_candidates=all_candidates or {},
        rules_tried=rules_tried or [],
        actor=actor if getattr(actor, "pk", None) else None,
        duration_ms=(time.perf_counter() - started) * 1000,
        created_at=now or timezone.now(),
    )
