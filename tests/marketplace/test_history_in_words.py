"""The marketplace history reads like the routing one (issue 12, item 9): tried as a new user
would, a solar lead's history showed no company per candidate, the rule that chose the
buyer marked ✘, a stray "✘ :" line and reason codes instead of words. Each test reads the
rendered admin HTML (the lead's change page and its distribute page)."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from distribution.admin.marketplace import distribute_url
from distribution.engine.marketplace.labels import REASON_LABELS, reason_label
from distribution.engine.marketplace.types import Reason
from distribution.models import DeliveryStatus, OutboundLead
from tests.factories.marketplace import GRONINGEN, CompanyFactory, LocationFactory

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold_lead(workflow, contract, new_lead):
    """A solar-like lead in Amsterdam sold by rule 1 (qs × 1) to "Sunny" of Sun BV; "Second"
    (Two BV) is eligible but not taken; "Farco" (Far BV, Groningen, 25 km radius) is out of
    the service area."""
    workflow(rules=[("qs", 1)], max_multiplication=1)
    contract(name="Sunny", company=CompanyFactory(name="Sun BV"), quality_score=9, price=45)
    contract(name="Second", company=CompanyFactory(name="Two BV"), quality_score=5)
    far = CompanyFactory(name="Far BV")
    LocationFactory(company=far, latitude=GRONINGEN[0], longitude=GRONINGEN[1])
    contract(name="Farco", company=far, radius_km=25)
    lead = new_lead()
    arrive(lead)
    assert sold_to(lead) == ["Sunny"]
    return lead


def _field(page: str, name: str) -> str:
    """The inline's cell of field NAME (the lead's distribution history)."""
    found = re.search(rf'<td class="field-{name}">(.*?)</td>\s*<td class="field-', page, re.S)
    assert found, f"no {name} cell"
    return found.group(1)


def _lead_page(client, manager, lead) -> str:
    client.force_login(manager)
    return client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()


def _distribute_page(client, manager, lead) -> str:
    client.force_login(manager)
    page = client.get(distribute_url(lead.pk)).content.decode()
    return page[page.index("<h2>Distribution history</h2>") :]


def test_each_candidate_shows_its_contract_and_company(sold_lead, client, manager):
    candidates = _field(_lead_page(client, manager, sold_lead), "candidate_table")

    for contract, company in (("Sunny", "Sun BV"), ("Second", "Two BV"), ("Farco", "Far BV")):
        assert f"<td>{contract}</td><td>{company}</td>" in candidates
    assert "<td></td>" not in candidates  # no blank name or company


def test_the_rule_that_chose_the_buyer_is_a_rule_marked_chosen(sold_lead, client, manager):
    for page in (
        _field(_lead_page(client, manager, sold_lead), "rules"),
        _distribute_page(client, manager, sold_lead),
    ):
        assert "✘ <b>1. qs × 1" not in page
        assert "✔ <b>1. qs × 1 (quality score, take 1)</b>: chose Sunny (Sun BV)" in page


def test_no_stray_cross_line_in_the_rules_tried(sold_lead, client, manager):
    rules = _field(_lead_page(client, manager, sold_lead), "rules")

    assert "<b></b>" not in rules
    assert not re.search(r"✘\s*(<b>\s*</b>)?\s*:", rules)
    # the reason summary is its own line, in words, not a rejected rule
    assert "<div><b>Contracts</b>: 1 chosen, " in rules
    assert "1 out of service area" in rules


def test_each_reason_in_words_and_the_chosen_one_with_its_price(sold_lead, client, manager):
    for page in (
        _field(_lead_page(client, manager, sold_lead), "candidate_table"),
        _distribute_page(client, manager, sold_lead),
    ):
        assert "✔ chosen</strong> at 45.00 · delivered" in page
        assert "out of service area (147 km &gt; 25 km radius)" in page
        assert "eligible, but the rule had taken its contracts" in page
        assert "out_of_service_area" not in page and "take_reached" not in page


def test_deliveries_and_their_answers_are_in_the_same_timeline(sold_lead, client, manager):
    OutboundLead.objects.filter(lead=sold_lead).update(status=DeliveryStatus.REJECTED)

    page = _distribute_page(client, manager, sold_lead)

    delivery = page.index("Delivery to <strong>Sunny</strong> (Sun BV)")
    attempt = page.index('<details class="mp-attempt">')
    assert delivery < attempt  # newest first: the delivery came after the sale
    assert "<strong>Rejected by the buyer</strong> · 45.00" in page
    assert "✔ chosen</strong> at 45.00 · rejected by the buyer" in page


def test_a_lead_without_coordinates_says_so(workflow, contract, new_lead, client, manager):
    workflow(rules=[("qs", 1)], max_multiplication=1)
    far = CompanyFactory(name="Far BV")
    LocationFactory(company=far, latitude=GRONINGEN[0], longitude=GRONINGEN[1])
    contract(name="Farco", company=far, radius_km=25)
    lead = new_lead(latitude=None, longitude=None)
    arrive(lead)

    page = _distribute_page(client, manager, lead)
    # the place is unknown: its own reason (issue 12 item 8), not "out of service area"
    assert "✘ the lead's place is unknown (no coordinates)" in html.unescape(page)
    assert "No contract is eligible for this lead." in page


def test_every_reason_code_has_words_and_an_unknown_one_reads_well():
    assert set(Reason) <= set(REASON_LABELS)
    assert all(REASON_LABELS[r] and "_" not in REASON_LABELS[r] for r in Reason)
    assert reason_label("some_new_code") == "some new code"
    assert reason_label(None) == ""
    assert reason_label("out_of_service_area", distance_km=42.4, radius_km=25.0) == (
        "out of service area (42 km > 25 km radius)"
    )


def test_the_contract_picker_gives_eligibility_in_words(sold_lead, client, manager):
    client.force_login(manager)
    page = client.get(distribute_url(sold_lead.pk)).content.decode()
    picker = page[page.index("<th>eligibility</th>") : page.index("<h2>Distribution history</h2>")]

    assert "<s>the company already holds this lead</s>" in picker  # Sunny has it
    assert "out of service area (147 km &gt; 25 km radius)" in picker
    assert "already_received" not in picker and "out_of_service_area" not in picker
