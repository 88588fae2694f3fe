"""The per-process cache of compiled contracts never decides on stale rows.

Selection keeps a campaign's contracts compiled between leads (`market_index`); these tests
change what it was built from behind its back — an ORM bulk update, a sale made by another
process, a rolled-back sale, an approved return — and check that the next lead sees it.
"""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.db import transaction

from crm.models import Contract
from distribution import services
from distribution.caches import market as cache
from distribution.models import MarketVersion, OutboundLead
from tests.marketplace.conftest import arrive, sold_to

pytestmark = pytest.mark.django_db

WATCHED = importlib.import_module("distribution.migrations.0004_market_version").WATCHED
# Contract columns no contract snapshot is built from (selection never reads them), so a
# change of one need not move the generation: the sale time (each sale writes it) and the
# buyer's return window (read only by the buyer's pages and API when a lead is returned).
NOT_READ_BY_SELECTION = {"last_outbound_at", "return_window"}


def test_the_generation_triggers_watch_every_contract_column_but_the_sale_time() -> None:
    columns = {f.column for f in Contract._meta.concrete_fields}
    # delivery settings are read fresh by each delivery attempt, never compiled into selection
    delivery = {c for c in columns if c.startswith("delivery_")}
    assert set(WATCHED["crm_contract"]) == columns - NOT_READ_BY_SELECTION - delivery


def test_an_edit_moves_the_generation_and_a_sale_does_not(workflow, contract, new_lead) -> None:
    workflow(rules=[("qs", 1)])
    first = contract(name="first")
    before = cache.market_generation()
    Contract.objects.filter(pk=first.pk).update(price=Decimal("11.00"))  # no save(), no signal
    edited = cache.market_generation()
    assert edited is not None and edited != before
    arrive(new_lead())
    assert cache.market_generation() == edited  # selling wrote last_outbound_at only
    assert MarketVersion.objects.count() == 1


def test_a_bulk_edit_behind_the_cache_is_seen_by_the_next_lead(workflow, contract, new_lead):
    workflow(rules=[("qs", 1)])
    cheap = contract(name="cheap", quality_score=9)
    contract(name="dear", quality_score=5)
    first = new_lead()
    arrive(first)
    assert sold_to(first) == ["cheap"]
    Contract.objects.filter(pk=cheap.pk).update(paused=True)
    second = new_lead()
    arrive(second)
    assert sold_to(second) == ["dear"]


def test_a_sale_by_another_process_counts_toward_the_cap(workflow, contract, new_lead):
    workflow(rules=[("qs", 1)])
    capped = contract(name="capped", quality_score=9, cap_day=2)
    contract(name="other", quality_score=1)
    first = new_lead()
    arrive(first)
    assert sold_to(first) == ["capped"]
    # another worker sells the second slot: rows this process never wrote
    elsewhere = new_lead()
    OutboundLead.objects.create(lead=elsewhere, contract=capped, method="auto", price=10)
    third = new_lead()
    arrive(third)
    assert sold_to(third) == ["other"]
    assert OutboundLead.objects.filter(contract=capped).count() == 2


def test_a_rolled_back_sale_leaves_no_phantom_usage(workflow, contract, new_lead):
    workflow(rules=[("qs", 1)])
    contract(name="capped", quality_score=9, cap_day=1)
    contract(name="other", quality_score=1)
    doomed = new_lead()
    with pytest.raises(RuntimeError), transaction.atomic():
        arrive(doomed)
        assert sold_to(doomed) == ["capped"]
        raise RuntimeError("the worker died before committing")
    assert not OutboundLead.objects.exists()
    kept = new_lead()
    arrive(kept)
    assert sold_to(kept) == ["capped"]  # the slot is still free


def test_an_approved_return_gives_the_slot_back_to_the_next_lead(
    workflow, contract, new_lead, manager
):
    workflow(rules=[("qs", 1)])
    contract(name="capped", quality_score=9, cap_day=1)
    contract(name="other", quality_score=1)
    first = new_lead()
    arrive(first)
    second = new_lead()
    arrive(second)
    assert (sold_to(first), sold_to(second)) == (["capped"], ["other"])
    outbound = OutboundLead.objects.get(lead=first)
    services.outbound_return_request(outbound_id=outbound.pk, reason="wrong number")
    services.outbound_return_approve(outbound_id=outbound.pk, actor=manager)
    third = new_lead()
    arrive(third)
    assert sold_to(third) == ["capped"]


def test_sales_read_inside_a_rolled_back_block_are_forgotten(workflow, contract, new_lead):
    workflow(rules=[("qs", 1)])
    contract(name="capped", quality_score=9, cap_day=1)
    contract(name="other", quality_score=1)
    first, second = new_lead(), new_lead()
    with pytest.raises(RuntimeError), transaction.atomic():
        arrive(first)
        arrive(second)  # reads the first sale: the cap is full inside this block
        assert (sold_to(first), sold_to(second)) == (["capped"], ["other"])
        raise RuntimeError("rolled back")
    third = new_lead()
    arrive(third)
    assert sold_to(third) == ["capped"]
