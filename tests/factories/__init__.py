"""factory-boy factories for the models every test touches."""

from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from accounts.models import AgentProfile, User
from accounts.tokens import hash_token
from leads.models import Activity, Campaign, Lead, Source, normalise_phone


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.LazyAttribute(lambda o: o.email)
    display_name = factory.Faker("name")
    password = factory.django.Password("pw")


class AgentProfileFactory(DjangoModelFactory):
    class Meta:
        model = AgentProfile

    user = factory.SubFactory(UserFactory)
    timezone = "UTC"
    active = True
    available = True


class AgentFactory(UserFactory):
    """A User with an AgentProfile and an API token (`plain_token`)."""

    class Meta:
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"agent{n}@example.com")

    @factory.post_generation
    def profile(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        token = f"agent-token-{obj.email}"
        obj.plain_token = token  # type: ignore[attr-defined]
        if create:
            AgentProfile.objects.update_or_create(
                user=obj, defaults={"api_token_hash": hash_token(token), **kwargs}
            )


class SourceFactory(DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"source-{n}")
    name = factory.LazyAttribute(lambda o: f"Source {o.slug}")
    token_hash = factory.LazyAttribute(lambda o: hash_token(f"source-token-{o.slug}"))

    @factory.post_generation
    def plain(obj: Source, create: bool, extracted: Any, **kwargs: Any) -> None:
        obj.plain_token = f"source-token-{obj.slug}"  # type: ignore[attr-defined]


class CampaignFactory(DjangoModelFactory):
    class Meta:
        model = Campaign
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"campaign-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class LeadFactory(DjangoModelFactory):
    class Meta:
        model = Lead

    source = factory.SubFactory(SourceFactory)
    external_id = factory.Sequence(lambda n: f"ext-{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.external_id}@example.com")
    phone = factory.Sequence(lambda n: f"+31 6 {10000000 + n}")
    email_normalized = factory.LazyAttribute(lambda o: o.email.lower())
    phone_normalized = factory.LazyAttribute(lambda o: normalise_phone(o.phone))

    class Params:
        unassigned = factory.Trait(status="unassigned", distribution_state="done")
        assigned = factory.Trait(status="assigned", distribution_state="done")


class ActivityFactory(DjangoModelFactory):
    class Meta:
        model = Activity

    lead = factory.SubFactory(LeadFactory)
    kind = Activity.Kind.CALL_ATTEMPT
