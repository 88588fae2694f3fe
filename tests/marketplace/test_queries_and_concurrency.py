"""Bounded queries per lead whatever the number of contracts, and exact caps and share
counts under concurrent distribution on PostgreSQL (row locks)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from distribution import services
from distribution.models import OutboundLead
from tests.factories import CampaignFactory
from tests.factories.marketplace import (
    CompanyFactory,
    ContractFactory,
    LocationFactory,
    MarketplaceLeadFactory,
    WorkflowFactory,
)


def _setup(n_contracts: int) -> Any:
    campaign = CampaignFactory()
    WorkflowFactory(
        campaign=campaign, rules=[("qs", 2), ("distance", 1), ("turnover", 2)], max_multiplication=5
    )
    for i in range(n_contracts):
        company = CompanyFactory()
        LocationFactory(
            company=company, latitude=52.0 + (i % 50) / 100, longitude=4.5 + (i % 37) / 100
        )
        ContractFactory(
            campaign=campaign,
            company=company,
            quality_score=i % 10,
            radius_km=80 if i % 3 else None,
            cap_day=50 if i % 2 else None,
            budget_month=Decimal("500") if i % 5 == 0 else None,
            price=Decimal(10 + i % 7),
        )
    return campaign


def _queries_for_one_lead(campaign: Any) -> int:
    lead = MarketplaceLeadFactory(campaign=campaign)
    with CaptureQueriesContext(connection) as ctx:
        attempt = services.lead_dispatch(lead_id=lead.pk)
    assert attempt is not None and attempt.outcome == "distributed"
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_one_lead_costs_the_same_queries_for_10_or_300_contracts():
    small = _queries_for_one_lead(_setup(10))
    large = _queries_for_one_lead(_setup(300))
    assert small == large
    assert large <= 25


def _race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run the callables at once in threads (each with its own connection)."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(i: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = work()
        except Exception as exc:
            results[i] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_leads_never_exceed_a_contract_cap():
    campaign = CampaignFactory()
    WorkflowFactory(campaign=campaign, rules=[("qs", 1)])
    capped = ContractFactory(campaign=campaign, cap_day=3, quality_score=9)
    ContractFactory(campaign=campaign, quality_score=1)  # the fallback for the others
    leads = [MarketplaceLeadFactory(campaign=campaign) for _ in range(8)]
    results = _race([lambda lead=lead: services.lead_dispatch(lead_id=lead.pk) for lead in leads])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert OutboundLead.objects.filter(contract=capped).count() == 3
    assert OutboundLead.objects.filter(lead__in=leads).count() == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_leads_never_exceed_a_contract_budget():
    campaign = CampaignFactory()
    WorkflowFactory(campaign=campaign, rules=[("qs", 1)])
    capped = ContractFactory(campaign=campaign, budget_day=Decimal("25"), price=Decimal("10"))
    leads = [MarketplaceLeadFactory(campaign=campaign) for _ in range(6)]
    results = _race([lambda lead=lead: services.lead_dispatch(lead_id=lead.pk) for lead in leads])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert OutboundLead.objects.filter(contract=capped).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sales_of_one_lead_keep_an_exclusive_contract_exclusive():
    campaign = CampaignFactory()
    WorkflowFactory(campaign=campaign, rules=[("qs", 2)], mode="manual")
    exclusive = ContractFactory(campaign=campaign, max_share_count=1)
    shared = [ContractFactory(campaign=campaign, max_share_count=5) for _ in range(2)]
    manager = None
    for _ in range(5):
        lead = MarketplaceLeadFactory(campaign=campaign)
        results = _race(
            [
                lambda lead=lead: services.lead_distribute_manually(
                    lead_id=lead.pk, contract_ids=[exclusive.pk], actor=manager
                ),
                lambda lead=lead: services.lead_distribute_manually(
                    lead_id=lead.pk, contract_ids=[c.pk for c in shared], actor=manager
                ),
            ]
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        held = set(OutboundLead.objects.filter(lead=lead).values_list("contract_id", flat=True))
        assert held in ({exclusive.pk}, {c.pk for c in shared})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_leads_with_crossing_contract_choices_do_not_deadlock():
    campaign = CampaignFactory()
    WorkflowFactory(campaign=campaign, rules=[("random", 3)], max_multiplication=3)
    contracts = [ContractFactory(campaign=campaign, cap_day=4) for _ in range(5)]
    leads = [MarketplaceLeadFactory(campaign=campaign) for _ in range(10)]
    results = _race([lambda lead=lead: services.lead_dispatch(lead_id=lead.pk) for lead in leads])
    assert not [r for r in results if isinstance(r, Exception)], results
    for c in contracts:
        assert OutboundLead.objects.filter(contract=c).count() <= 4
    assert OutboundLead.objects.count() == 5 * 4  # 10 leads × 3 wanted, 20 slots in all
