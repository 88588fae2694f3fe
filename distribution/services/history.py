"""The distribution history's lines: rules tried and candidates as stored on an attempt
(with their JSON text, cached), every candidate in its compact form, and the attempt's
outcome code.

An attempt keeps its first ranked and rejected candidates as readable lines (`candidates`,
what the lead's page lists first) and EVERY candidate with its reason in `all_candidates`,
columnar: integer columns (agent ids, member ids, ranks, and reason codes and details as
indices into the attempt's own lists of the codes and texts it uses; -1: none) packed into
one base64 string, so the database parses one string, not a number per candidate. Agents'
e-mails are not stored there (the ids are); `selectors.history` decodes it lazily.
"""

from __future__ import annotations

import base64
import json
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Any

from distribution.db.bulk import EncodedJSON, EncodedJSONObject
from distribution.engine.types import Candidate, Decision, RuleTrial

STORED_CANDIDATES = 10  # ranked and rejected lines kept per attempt; the rest are counted

# JSON text of the history lines seen lately: one routed lead stores some thirty lines,
# and a pool's lines repeat from lead to lead (the same member at the same rank, the same
# rule not matching for the same reason). Bounded: emptied when it grows past its limit.
_LINE_TEXTS: dict[tuple[Any, ...], str] = {}
_LINE_TEXTS_LIMIT = 50_000


def _line_text(key: tuple[Any, ...], line: dict[str, Any]) -> str:
    text = _LINE_TEXTS.get(key)
    if text is None:
        if len(_LINE_TEXTS) >= _LINE_TEXTS_LIMIT:
            _LINE_TEXTS.clear()
        text = _LINE_TEXTS[key] = json.dumps(line)
    return text


def _encoded(lines: list[dict[str, Any]], texts: list[str]) -> EncodedJSON:
    return EncodedJSON(lines, "[" + ", ".join(texts) + "]")


def _candidate_line(c: Candidate) -> dict[str, Any]:
    """Candidate.to_dict, inlined (twenty lines per routed lead)."""
    return {
        "agent_id": c.agent_id,
        "agent": c.email,
        "member_id": c.member_id,
        "rank": c.rank,
        "reason": c.reason,
        "detail": c.detail,
    }


def trial_lines(trials: Sequence[RuleTrial]) -> EncodedJSON:
    """RuleTrial.to_dict of each rule tried, with their JSON text."""
    lines, texts = [], []
    for t in trials:
        line = {
            "rule_id": t.rule_id,
            "rule": t.rule_name,
            "matched": t.matched,
            "reason": t.reason,
            "detail": t.detail,
        }
        lines.append(line)
        texts.append(_line_text((t.rule_id, t.rule_name, t.matched, t.reason, t.detail), line))
    return _encoded(lines, texts)


def store_candidates(decision: Decision) -> tuple[EncodedJSON, str]:
    """The first ranked and rejected candidates, and a count of the rest by reason."""
    ranked: list[Candidate] = []
    rejected: list[Candidate] = []
    for c in decision.candidates:
        (ranked if c.reason is None else rejected).append(c)
    kept = ranked[:STORED_CANDIDATES] + rejected[:STORED_CANDIDATES]
    rest = ranked[STORED_CANDIDATES:] + rejected[STORED_CANDIDATES:]
    lines: list[dict[str, Any]] = []
    texts: list[str] = []
    known = _LINE_TEXTS.get
    for c in kept:
        line = _candidate_line(c)
        lines.append(line)
        key = (c.agent_id, c.email, c.member_id, c.rank, c.reason, c.detail)
        texts.append(known(key) or _line_text(key, line))
    if decision.default_candidate is not None and decision.default_candidate not in kept:
        line = {**_candidate_line(decision.default_candidate), "detail": "default agent"}
        lines.append(line)
        texts.append(json.dumps(line))
    note = ""
    if rest:
        counts = Counter(c.reason or "eligible" for c in rest)
        note = (
            f" (+{len(rest)} more candidates: "
            + ", ".join(f"{n} {r}" for r, n in counts.most_common())
            + ")"
        )
    return _encoded(lines, texts), note


COMPACT_VERSION = 2  # the layout of `all_candidates` (selectors.history reads it)
_INT32 = 2**31 - 1


def pack_columns(columns: Sequence[Sequence[int]]) -> tuple[str, str]:
    """Integer COLUMNS of one length as (typecode, base64 of their machine integers, column
    after column): one JSON string that the database stores without parsing a number per
    candidate. Read back by `selectors.history.unpack_columns`."""
    for typecode in ("i", "q"):  # 32-bit unless some id needs more
        packed = array(typecode)
        try:
            for column in columns:
                packed.extend(column)
        except OverflowError:
            continue
        return typecode, base64.b64encode(packed.tobytes()).decode("ascii")
    raise OverflowError("a candidate column holds an integer beyond 64 bits")


def compact_candidates(decision: Decision) -> EncodedJSONObject:
    """Every candidate of DECISION, ranked and rejected, with its reason: the compact document
    stored as `DistributionAttempt.all_candidates` (with its JSON text): `n` candidates, five
    packed integer columns (agent id, member id, rank, reason and detail as indices into
    `codes` and `details`; -1: none). The default agent's check, when it was tried and is not
    a candidate already, comes last, its index under "default"."""
    candidates = decision.candidates
    default = decision.default_candidate
    if default is not None and default not in candidates:
        candidates = (*candidates, default)
    else:
        default = None
    codes: dict[str, int] = {}
    texts: dict[str, int] = {}
    # comprehensions (a routed lead has some thirty candidates; this runs per lead)
    code, detail_code = codes.setdefault, texts.setdefault
    typecode, packed = pack_columns(
        (
            [c.agent_id for c in candidates],
            [-1 if (m := c.member_id) is None else m for c in candidates],
            [-1 if (k := c.rank) is None else k for c in candidates],
            [-1 if (r := c.reason) is None else code(r, len(codes)) for c in candidates],
            [detail_code(d, len(texts)) if (d := c.detail) else -1 for c in candidates],
        )
    )
    doc: dict[str, Any] = {
        "v": COMPACT_VERSION,
        "n": len(candidates),
        "t": typecode,
        "cols": packed,
        "codes": list(codes),
        "details": list(texts),
    }
    # the text as json.dumps writes it, made by hand: base64 and the typecode need no
    # escaping, and the code and detail lists are few and short
    text = (
        f'{{"v":{COMPACT_VERSION},"n":{len(candidates)},"t":"{typecode}","cols":"{packed}",'
        f'"codes":{json.dumps(doc["codes"])},"details":{json.dumps(doc["details"])}'
    )
    if default is not None:
        doc["default"] = len(candidates) - 1
        text += f',"default":{doc["default"]}'
    return EncodedJSONObject(doc, text + "}")


def outcome_code(decision: Decision) -> str:
    """The attempt's outcome: the decision's reason code (default agent named as such)."""
    if decision.used_default_agent:
        return "default_agent"
    return decision.reason_code
