"""The usage statement of the database door: the fixed PostgreSQL statement and its portable
ORM twin count the same outbound leads and spend (both run on PostgreSQL here)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from distribution.db.usage import cap_usage, cap_usage_orm, cap_usage_sql
from distribution.models import OutboundLead
from leads.models import Lead
from tests.factories import CampaignFactory
from tests.factories.marketplace import ContractFactory, MarketplaceLeadFactory, WorkflowFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(db: None) -> Any:
    return CampaignFactory()


@pytest.fixture
def workflow(campaign: Any) -> Callable[..., Any]:
    def make(rules: list[tuple[Any, ...]] | None = None, **fields: Any) -> Any:
        return WorkflowFactory(campaign=campaign, rules=rules, **fields)

    return make


@pytest.fixture
def contract(campaign: Any) -> Callable[..., Any]:
    def make(**fields: Any) -> Any:
        fields.setdefault("campaign", campaign)
        return ContractFactory(**fields)

    return make


@pytest.fixture
def new_lead(campaign: Any) -> Callable[..., Lead]:
    def make(**fields: Any) -> Lead:
        fields.setdefault("campaign", campaign)
        return MarketplaceLeadFactory(**fields)

    return make


@pytest.mark.postgres
def test_usage_read_by_id_on_postgresql_equals_the_portable_campaign_query(
    workflow, contract, new_lead
):
    """The fixed-SQL usage read of the hot path counts exactly what the ORM query counts:
    per contract in its own time zone's day, week and month, without cherry-picks and
    approved returns."""
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday
    east = contract(name="east", timezone="Pacific/Auckland", cap_day=50)
    west = contract(name="west", timezone="America/Los_Angeles", cap_day=50)
    hours = [0.1, 11, 12, 23, 48, 144, 480, 960]  # the 2nd is cherry-picked, the 4th returned
    for n, age in enumerate(hours):
        for c in (east, west):
            OutboundLead.objects.create(
                lead=new_lead(),
                contract=c,
                method="cherry_pick" if n == 1 else "auto",
                price=Decimal(10 + n),
                created_at=now - timedelta(hours=age),
                return_status="approved" if n == 3 else "",
            )
    zones = {east.pk: east.timezone, west.pk: west.timezone}
    by_id = cap_usage(contracts=zones, now=now)
    by_campaign = cap_usage(contracts=zones, now=now, campaign_id=east.campaign_id)
    assert by_id == by_campaign
    # Auckland's Wednesday began 23.5 h ago, Los Angeles' 2.5 h ago.
    east_day = (by_id[east.pk].day, by_id[east.pk].day_spent)
    west_day = (by_id[west.pk].day, by_id[west.pk].day_spent)
    assert (east_day, west_day) == ((2, Decimal(22)), (1, Decimal(10)))
    assert by_id[east.pk].week == by_id[west.pk].month == 3


@pytest.mark.postgres
def test_both_twins_by_id_give_the_same_usage_on_postgresql(contract, new_lead):
    """`cap_usage_sql` and `cap_usage_orm` selecting by id count the same rows, across time
    zones, cherry-picks and returns, and both answer nothing for no contracts."""
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 3, 8, 23, 45, tzinfo=UTC)  # a Sunday night in UTC
    tokyo = contract(name="tokyo", timezone="Asia/Tokyo", cap_week=9)
    utc = contract(name="utc", timezone="UTC", budget_month=Decimal(500))
    quiet = contract(name="quiet", timezone="Europe/Amsterdam", cap_day=3)
    for n, age in enumerate([0.2, 1, 5, 30, 200, 900]):
        for c in (tokyo, utc):
            OutboundLead.objects.create(
                lead=new_lead(),
                contract=c,
                method="cherry_pick" if n == 2 else "auto",
                price=Decimal(5 + n),
                created_at=now - timedelta(hours=age),
                return_status="approved" if n == 4 else "",
            )
    zones = {c.pk: c.timezone for c in (tokyo, utc, quiet)}
    by_sql = cap_usage_sql(contracts=zones, now=now)
    assert by_sql == cap_usage_orm(contracts=zones, now=now) == cap_usage(contracts=zones, now=now)
    assert set(by_sql) == {tokyo.pk, utc.pk}  # a contract with nothing sold has no row
    assert cap_usage_sql(contracts={}, now=now) == cap_usage_orm(contracts={}, now=now) == {}
