"""Fixtures of the marketplace tests: a campaign with a workflow, contracts, a manager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from distribution import services
from distribution.models import OutboundLead
from leads.models import Lead
from tests.factories import CampaignFactory, UserFactory
from tests.factories.marketplace import (
    ContractFactory,
    MarketplaceLeadFactory,
    WorkflowFactory,
)


@pytest.fixture
def campaign(db: None) -> Any:
    return CampaignFactory()


@pytest.fixture
def manager(db: None) -> Any:
    return UserFactory(email="manager@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def workflow(campaign: Any) -> Callable[..., Any]:
    """workflow(rules=[("qs", 2)], mode="on_arrival", **fields) on the test's campaign."""

    def make(rules: list[tuple[Any, ...]] | None = None, **fields: Any) -> Any:
        return WorkflowFactory(campaign=campaign, rules=rules, **fields)

    return make


@pytest.fixture
def contract(campaign: Any) -> Callable[..., Any]:
    """contract(**fields): a contract of its own company on the test's campaign."""

    def make(**fields: Any) -> Any:
        fields.setdefault("campaign", campaign)
        return ContractFactory(**fields)

    return make


@pytest.fixture
def new_lead(campaign: Any) -> Callable[..., Lead]:
    """new_lead(**fields): a pending lead in Amsterdam on the test's campaign."""

    def make(**fields: Any) -> Lead:
        fields.setdefault("campaign", campaign)
        return MarketplaceLeadFactory(**fields)

    return make


def arrive(lead: Lead) -> Any:
    """The arrival path: what the distribute_lead task runs for a new lead."""
    return services.lead_dispatch(lead_id=lead.pk, trigger="arrival")


def sold_to(lead: Lead, *, method: str | None = None) -> list[str]:
    """Names of the contracts holding the lead, in sale order."""
    qs = OutboundLead.objects.filter(lead=lead).order_by("created_at", "id")
    if method:
        qs = qs.filter(method=method)
    return list(qs.values_list("contract__name", flat=True))
