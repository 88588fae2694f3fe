"""factory-boy factories for the marketplace: companies, locations, contracts, workflows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from factory.django import DjangoModelFactory

from accounts.models import BuyerProfile
from accounts.tokens import hash_token
from crm.models import Company, Contract, ContractGroup, DeliveryInterval, Location
from distribution.models import (
    DistributionWindow,
    OutboundLead,
    SelectionRule,
    Workflow,
)
from tests.factories import CampaignFactory, LeadFactory, UserFactory

AMSTERDAM = (52.3676, 4.9041)
ROTTERDAM = (51.9244, 4.4777)
GRONINGEN = (53.2194, 6.5665)


class CompanyFactory(DjangoModelFactory):
    class Meta:
        model = Company
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Company {n}")


class LocationFactory(DjangoModelFactory):
    class Meta:
        model = Location

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"site {n}")
    latitude = AMSTERDAM[0]
    longitude = AMSTERDAM[1]


class ContractGroupFactory(DjangoModelFactory):
    class Meta:
        model = ContractGroup

    name = factory.Sequence(lambda n: f"group {n}")


class ContractFactory(DjangoModelFactory):
    """A contract with its own company on a campaign; shared (max share count 10) unless
    told otherwise, with no caps and no service area."""

    class Meta:
        model = Contract

    name = factory.Sequence(lambda n: f"contract {n}")
    company = factory.SubFactory(CompanyFactory)
    campaign = factory.SubFactory(CampaignFactory)
    price = Decimal("10.00")
    quality_score = 5.0
    max_share_count = 10
    timezone = "UTC"

    class Params:
        exclusive = factory.Trait(max_share_count=1)


class DeliveryIntervalFactory(DjangoModelFactory):
    class Meta:
        model = DeliveryInterval

    contract = factory.SubFactory(ContractFactory)
    weekday = 0


class WorkflowFactory(DjangoModelFactory):
    class Meta:
        model = Workflow
        django_get_or_create = ("campaign",)
        skip_postgeneration_save = True

    campaign = factory.SubFactory(CampaignFactory)
    mode = "on_arrival"
    max_multiplication = 10

    class Params:
        window = factory.Trait(mode="window")
        manual = factory.Trait(mode="manual")

    @factory.post_generation
    def rules(obj: Workflow, create: bool, extracted: Any, **kwargs: Any) -> None:
        """rules=[("qs", 3), ("turnover", 2, Decimal("50"))]; default one QS rule × 10."""
        if not create:
            return
        specs = extracted if extracted is not None else [("qs", 10)]
        for position, spec in enumerate(specs, 1):
            mode, take, *rest = spec
            SelectionRule.objects.create(
                workflow=obj,
                position=position,
                mode=mode,
                take=take,
                min_turnover=rest[0] if rest else None,
            )


class MarketplaceLeadFactory(LeadFactory):
    """A pending lead in Amsterdam."""

    latitude = AMSTERDAM[0]
    longitude = AMSTERDAM[1]


class OutboundLeadFactory(DjangoModelFactory):
    class Meta:
        model = OutboundLead

    lead = factory.SubFactory(MarketplaceLeadFactory)
    contract = factory.SubFactory(ContractFactory)
    method = "auto"
    price = factory.LazyAttribute(lambda o: o.contract.price)


class DistributionWindowFactory(DjangoModelFactory):
    class Meta:
        model = DistributionWindow

    lead = factory.SubFactory(MarketplaceLeadFactory)


class BuyerFactory(UserFactory):
    """A User with a BuyerProfile of COMPANY (a new company unless given) and an API token
    (`plain_token`): `BuyerFactory(company=c)`."""

    class Meta:
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"buyer{n}@example.com")

    @factory.post_generation
    def company(obj: Any, create: bool, extracted: Any, **kwargs: Any) -> None:
        token = f"buyer-token-{obj.email}"
        obj.plain_token = token
        if create:
            BuyerProfile.objects.update_or_create(
                user=obj,
                defaults={
                    "company": extracted or CompanyFactory(),
                    "api_token_hash": hash_token(token),
                },
            )
