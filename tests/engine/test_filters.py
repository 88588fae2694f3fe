"""Lead filters over columns and attributes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distribution.engine.filters import match_filter, match_filters
from distribution.engine.types import Filter, LeadSnapshot

CREATED = datetime(2024, 6, 3, 10, tzinfo=UTC)


def lead(attributes: dict[str, object] | None = None, **fields: object) -> LeadSnapshot:
    return LeadSnapshot(
        id=1,
        source="web",
        campaign="solar",
        created_at=CREATED,
        fields=fields,
        attributes=attributes or {},
    )


def ok(field: str, op: str, value: object, target: LeadSnapshot) -> bool:
    return match_filter(Filter(field, op, value), target)


def test_eq_and_ne_compare_text_case_insensitively() -> None:
    target = lead(city="Amsterdam ", country="NL")
    assert ok("city", "eq", "amsterdam", target)
    assert not ok("city", "eq", "Utrecht", target)
    assert ok("city", "ne", "Utrecht", target)
    assert not ok("city", "ne", "AMSTERDAM", target)


def test_numbers_compare_as_numbers_but_postcodes_stay_text() -> None:
    target = lead(company_size=50, postcode="01012")
    assert ok("company_size", "eq", "50", target)
    assert ok("company_size", "eq", 50.0, target)
    assert not ok("postcode", "eq", "1012", target)  # leading zeros matter in text
    assert ok("postcode", "eq", "01012", target)


def test_a_column_wins_over_an_attribute_and_attributes_fill_in() -> None:
    target = lead({"budget": "12000", "city": "Paris"}, city="Amsterdam")
    assert ok("city", "eq", "Amsterdam", target)
    assert ok("budget", "gte", 10000, target)
    assert ok("source", "eq", "WEB", target)
    assert ok("campaign", "in", ["solar", "wind"], target)


def test_in_and_not_in_accept_lists_and_comma_text() -> None:
    target = lead(country="BE")
    assert ok("country", "in", ["nl", "be"], target)
    assert ok("country", "in", "NL, BE", target)
    assert not ok("country", "not_in", ["NL", "BE"], target)
    assert ok("country", "not_in", ["DE"], target)


def test_contains_on_text_and_on_lists() -> None:
    target = lead({"tags": ["Solar", "vip"]}, company_name="Acme Solar BV")
    assert ok("company_name", "contains", "solar", target)
    assert not ok("company_name", "contains", "wind", target)
    assert ok("tags", "contains", "VIP", target)
    assert ok("tags", "eq", "solar", target)  # a list field matches eq when an element does


def test_ordering_coerces_numeric_text_and_never_matches_a_missing_field() -> None:
    target = lead({"score": "7.5"}, company_size="250")
    assert ok("company_size", "gt", 100, target)
    assert ok("company_size", "lte", "250", target)
    assert not ok("company_size", "lt", 250, target)
    assert ok("score", "gte", 7.5, target)
    for op in ("gt", "gte", "lt", "lte"):
        assert not ok("revenue", op, 0, target)
        assert not ok("company_size", op, "many", target)
    empty = lead(company_size=None)
    assert not ok("company_size", "lt", 10, empty)


def test_dates_compare_with_dates() -> None:
    target = lead({"moved_in": date(2024, 5, 1)})
    assert ok("moved_in", "gte", date(2024, 1, 1), target)
    assert not ok("moved_in", "gte", datetime(2024, 1, 1, tzinfo=UTC), target)


def test_missing_field_matches_only_negations_and_is_empty() -> None:
    target = lead()
    assert not ok("city", "eq", "Amsterdam", target)
    assert ok("city", "ne", "Amsterdam", target)
    assert not ok("city", "in", ["Amsterdam"], target)
    assert ok("city", "not_in", ["Amsterdam"], target)
    assert not ok("city", "contains", "A", target)
    assert ok("city", "is_empty", None, target)
    assert ok("city", "is_empty", True, target)
    assert not ok("city", "is_empty", False, target)


def test_is_empty_sees_blank_text_and_empty_lists() -> None:
    target = lead({"tags": []}, city="  ", email="x@example.com")
    assert ok("city", "is_empty", True, target)
    assert ok("tags", "is_empty", "yes", target)
    assert ok("email", "is_empty", "false", target)
    assert not ok("email", "is_empty", True, target)


def test_within_km_uses_the_geodesic_distance() -> None:
    utrecht = lead(latitude=52.0907, longitude=5.1214)  # about 35 km from Amsterdam
    assert ok("location", "within_km", {"lat": 52.3676, "lon": 4.9041, "km": 50}, utrecht)
    assert not ok("location", "within_km", [52.3676, 4.9041, 20], utrecht)
    assert ok("location", "within_km", ["52.3676", "4.9041", "36"], utrecht)
    assert not ok("location", "within_km", [52.3676, 4.9041, 500], lead())  # no coordinates
    far = lead(latitude=40.7, longitude=-74.0)
    assert not ok("location", "within_km", [52.3676, 4.9041, 5000], far)


def test_invalid_filters_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="operator"):
        Filter("city", "like", "Ams%")
    with pytest.raises(ValueError):
        Filter("location", "within_km", {"lat": 52.3})
    with pytest.raises(ValueError):
        Filter("location", "within_km", [95, 4.9, 10])


def test_match_filters_lists_every_failure() -> None:
    target = lead(city="Amsterdam", company_size=10)
    matched, failed = match_filters(
        [
            Filter("city", "eq", "Amsterdam"),
            Filter("company_size", "gte", 50),
            Filter("country", "eq", "NL"),
        ],
        target,
    )
    assert not matched
    assert failed == [
        "company_size gte 50 (lead: 10)",
        "country eq 'NL' (lead: missing)",
    ]
    assert match_filters([], target) == (True, [])


values = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.sampled_from(["", " ", "a", "A", "b", "5", "05", "-1", "x,y"]),
    st.lists(st.sampled_from(["a", "B", "5"]), max_size=3),
)


@given(values, values)
def test_negations_are_exact_complements(actual: object, expected: object) -> None:
    with_field = lead({"f": actual})
    without = lead()
    for target in (with_field, without):
        assert ok("f", "ne", expected, target) != ok("f", "eq", expected, target)
        assert ok("f", "not_in", expected, target) != ok("f", "in", expected, target)
