"""Per-agent performance metrics (seed 002) and how routing uses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from distribution.engine.metrics import Activity, AssignedLead, compute_metrics
from distribution.engine.types import AgentMetrics

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)
M = timedelta(minutes=1)


def assigned(minutes_ago: int, *activities: tuple[str, int]) -> AssignedLead:
    """A lead assigned ``minutes_ago``, with (kind, minutes after assignment) activities."""
    at = NOW - minutes_ago * M
    return AssignedLead(at, tuple(Activity(kind, at + after * M) for kind, after in activities))


def test_speeds_are_medians_and_rates_are_shares_of_assigned_leads() -> None:
    leads = [
        assigned(600, ("call_attempt", 5), ("contact_made", 20), ("qualified", 60)),
        assigned(500, ("email", 10), ("call_attempt", 3), ("meeting", 30), ("converted", 90)),
        assigned(400, ("call_attempt", 40)),
        assigned(300, ("note", 1), ("call_attempt", 15), ("contact_made", 16)),
    ]
    metrics = compute_metrics(leads, NOW, WINDOW)
    assert metrics.leads == 4
    assert metrics.speed_to_contact_attempt == 10 * M  # median of 5, 3, 40, 15
    assert metrics.speed_to_contact == 20 * M  # median of 20, 30, 16
    assert metrics.contact_rate == 0.75
    assert metrics.qualification_rate == 0.5  # converted counts as qualified
    assert metrics.conversion_rate == 0.25


def test_a_lead_never_attempted_counts_its_wait_so_far() -> None:
    leads = [assigned(120), assigned(90), assigned(60, ("call_attempt", 1))]
    metrics = compute_metrics(leads, NOW, WINDOW)
    assert metrics.speed_to_contact_attempt == 90 * M  # median of 120, 90, 1
    assert metrics.speed_to_contact is None
    assert metrics.contact_rate == 0.0


def test_only_the_trailing_window_and_activities_up_to_now_count() -> None:
    old = AssignedLead(NOW - timedelta(days=31), (Activity("converted", NOW - timedelta(days=30)),))
    future = assigned(10, ("converted", 20))  # logged after ``now``: not yet known
    metrics = compute_metrics([old, future], NOW, WINDOW)
    assert metrics.leads == 1
    assert metrics.conversion_rate == 0.0


def test_no_leads_means_no_data() -> None:
    assert compute_metrics([], NOW, WINDOW) == AgentMetrics()
    assert AgentMetrics().value("conversion_rate") is None
    assert AgentMetrics(speed_to_contact=2 * M).value("speed_to_contact") == 120.0
