"""Initial status and initial activity (issue 11 item 7). Seed 003: "Once the Distribution
Type is selected, the user must select an Initial Status and Initial Activity ... the list
of initial activities will reflect the status selection." Both the admin's rule form and
config files refuse a rule of an assigning strategy without them, or a pair that does not
fit; the form lists the activities of the chosen status."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from distribution.configuration import ConfigError, config_apply
from distribution.models import Rule
from tests.factories import UserFactory
from tests.routing.admin_forms import change_form_data
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Any) -> Any:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _add_rule(client: Any, **fields: Any) -> Any:
    url = reverse("admin:distribution_rule_add")
    data = change_form_data(client.get(url))
    data.update({k: str(v) for k, v in fields.items()})
    return client.post(url, data)


def _options(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None, name
    return re.findall(r'<option value="([^"]*)"', select.group(1))


def test_an_assigning_rule_without_an_initial_activity_is_refused(agents, signed_in):
    pool = make_pool(agents(1))
    response = _add_rule(
        signed_in,
        name="round robin",
        strategy="round_robin",
        pool=pool.pk,
        initial_status="working",
        initial_activity="",
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "required for strategy 'round_robin'" in " ".join(errors["initial_activity"])
    assert not Rule.objects.filter(name="round robin").exists()


def test_an_activity_that_does_not_follow_the_status_is_refused(agents, signed_in):
    pool = make_pool(agents(1))
    response = _add_rule(
        signed_in,
        name="contacted",
        strategy="round_robin",
        pool=pool.pk,
        initial_status="contacted",
        initial_activity="new_lead",
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "does not follow initial status 'contacted'" in " ".join(errors["initial_activity"])

    response = _add_rule(
        signed_in,
        name="contacted",
        strategy="round_robin",
        pool=pool.pk,
        initial_status="contacted",
        initial_activity="contact_made",
    )
    assert response.status_code == 302
    rule = Rule.objects.get(name="contacted")
    assert (rule.initial_status, rule.initial_activity) == ("contacted", "contact_made")


def test_a_rule_that_never_assigns_needs_no_initial_activity(signed_in):
    response = _add_rule(signed_in, name="prospects", strategy="none", initial_activity="")
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Rule.objects.get(name="prospects").initial_activity == ""


def test_the_form_lists_the_activities_of_the_rules_status(agents, signed_in):
    rule = make_rule(
        pool=make_pool(agents(1)), initial_status="qualified", initial_activity="qualified"
    )
    page = signed_in.get(reverse("admin:distribution_rule_change", args=[rule.pk]))
    text = page.content.decode()
    assert _options(text, "initial_activity") == ["", "qualified", "meeting", "note"]
    # the map the page's script re-lists them from when the status changes
    assert "data-activities-by-status" in text and "js/rule_initial_activity.js" in text


def test_a_config_file_names_the_rule_and_key_of_a_missing_or_unfitting_activity(agents):
    (a,) = agents(1)
    pools = [{"name": "p", "members": [{"agent": a.email}]}]
    rules = [
        {"name": "prospects", "strategy": "none"},
        {"name": "ok", "pool": "p", "initial_status": "working", "initial_activity": "new_lead"},
        {"name": "hopper", "strategy": "hopper", "pool": "p", "initial_activity": "note"},
        {
            "name": "missing",
            "strategy": "round_robin",
            "pool": "p",
            "initial_status": "working",
            "initial_activity": "",
        },
        {"name": "unfit", "pool": "p", "initial_status": "qualified", "initial_activity": "email"},
    ]
    with pytest.raises(ConfigError) as err:
        config_apply({"pools": pools, "rules": rules})
    text = "\n".join(err.value.messages)
    assert "rules[3].initial_activity: required for strategy 'round_robin'" in text
    assert "rules[4].initial_activity: 'email' does not follow initial status 'qualified'" in text
    assert "rules[0]" not in text and "rules[1]" not in text and "rules[2]" not in text
    assert not Rule.objects.exists()  # nothing applied


def test_a_config_file_that_names_no_activity_gets_the_statuss_usual_one(agents):
    """Older files (and the §7 contract's own) name no initial activity: the status's usual
    one is taken, and the export then names it (decision H5)."""
    (a,) = agents(1)
    config_apply(
        {
            "pools": [{"name": "p", "members": [{"agent": a.email}]}],
            "rules": [
                {"name": "plain", "pool": "p"},
                {"name": "working", "pool": "p", "initial_status": "working"},
            ],
        }
    )
    pairs = dict(Rule.objects.values_list("name", "initial_activity"))
    assert pairs == {"plain": "new_lead", "working": "new_lead"}
