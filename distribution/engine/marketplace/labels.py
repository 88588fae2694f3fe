"""The marketplace's reason codes in words, as a manager reads them in a lead's distribution
history: one label per `Reason` (and per code other parts write in the history: the batch
allocation, delivery outcomes), with a readable fallback for any code not listed yet."""

from __future__ import annotations

from distribution.engine.marketplace.types import Reason

# Every `Reason` has its label (a test holds this); the string keys after them are codes
# written by other parts (batch allocation, notes, delivery outcomes, geocoding).
REASON_LABELS: dict[str, str] = {
    Reason.NO_CAMPAIGN: "the lead has no campaign",
    Reason.INACTIVE: "contract inactive",
    Reason.PAUSED: "contract paused",
    Reason.OUT_OF_DATES: "outside the contract's start and end dates",
    Reason.OTHER_CAMPAIGN: "contract of another campaign",
    Reason.ALREADY_RECEIVED: "the company already holds this lead",
    Reason.SHARE_COUNT_EXCEEDED: "the lead is already shared more than the contract allows",
    Reason.CAP_REACHED: "lead cap reached",
    Reason.BUDGET_REACHED: "budget reached",
    Reason.LEAD_TOO_OLD: "lead older than the contract accepts",
    Reason.SCORE_TOO_LOW: "lead score below the contract's minimum",
    Reason.OUTSIDE_DELIVERY_HOURS: "outside the contract's delivery hours",
    Reason.OUT_OF_SERVICE_AREA: "out of service area",
    Reason.COMPANY_ALREADY_SELECTED: "another contract of the same company was chosen",
    Reason.MULTIPLICATION_REACHED: "the lead was sold as many times as the workflow allows",
    Reason.TAKE_REACHED: "eligible, but the rule had taken its contracts",
    Reason.NOT_SELECTED_RANK: "eligible, ranked below the chosen ones",
    Reason.RULE_SKIPPED_MIN_TURNOVER: "its rule was skipped: below the rule's minimum turnover",
    Reason.TOTAL_MINIMUMS_NOT_REACHED: "the workflow's minimums were not reached",
    Reason.NO_RULE: "eligible, but no selection rule took it",
    Reason.NO_CANDIDATES: "no eligible contract left for this rule",
    Reason.NO_SELECTION_RULES: "the workflow has no selection rules",
    Reason.NO_ELIGIBLE_CONTRACTS: "no contract is eligible",
    Reason.NOTHING_SELECTED: "the rules chose no contract",
    Reason.MIN_CONTRACTS_NOT_REACHED: "fewer contracts than the workflow's minimum",
    Reason.MIN_TURNOVER_NOT_REACHED: "turnover below the workflow's minimum",
    # written by other parts of the history
    "not_selected_batch": "eligible, not chosen by the batch allocation",
    "batch_optimal": "batch allocation",
    "cherry_pick": "cherry-picked by a manager",
    "no_coordinates": "the lead's place is unknown (no coordinates)",
    "rejected_by_buyer": "rejected by the buyer",
    "delivery_failed": "delivery failed",
}


def reason_label(
    code: str | None,
    *,
    distance_km: float | None = None,
    radius_km: float | None = None,
    lead_located: bool = True,
) -> str:
    """CODE in words ("" for none); the service area says how far and how wide when known:
    "out of service area (42 km > 25 km radius)"."""
    if not code:
        return ""
    text = REASON_LABELS.get(code) or code.replace("_", " ")
    if code == Reason.OUT_OF_SERVICE_AREA:
        if not lead_located:
            text += " (the lead has no coordinates)"
        elif distance_km is not None and radius_km is not None:
            text += f" ({distance_km:.0f} km > {radius_km:g} km radius)"
        elif radius_km is not None:
            text += f" (farther than its {radius_km:g} km radius)"
    return text
