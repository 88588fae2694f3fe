"""Configuration as code: `apply_config` / `export_config` (DESIGN §7)."""

from __future__ import annotations

import copy
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AgentProfile, User
from leads.models import Campaign, Source
from tests.factories import AgentFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

SETUP: dict[str, Any] = {
    "agents": [
        {
            "email": "ava@example.com",
            "name": "Ava Jansen",
            "timezone": "Europe/Amsterdam",
            "token": "agent-token-ava-000001",
        },
        {
            "email": "ben@example.com",
            "name": "Ben de Vries",
            "timezone": "America/New_York",
            "available": False,
        },
        {"email": "cy@example.com", "name": "Cy Smit", "active": False},
    ],
    "sources": [
        {"slug": "web-form", "name": "Website form", "token": "source-token-web-form-01"},
        {"slug": "zillow", "name": "Zillow feed"},
    ],
    "campaigns": [{"slug": "solar", "name": "Solar panels"}],
}


def setup(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SETUP)
    data.update(changes)
    return data


def write(tmp_path: Path, data: Any, fmt: str = "yaml", name: str = "setup") -> Path:
    path = tmp_path / f"{name}.{fmt}"
    text = json.dumps(data, indent=2) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    return path


def apply(path: Path | str, *args: str) -> str:
    out = StringIO()
    call_command("apply_config", str(path), *args, stdout=out)
    return out.getvalue()


def export(*args: str) -> str:
    out = StringIO()
    call_command("export_config", *args, stdout=out)
    return out.getvalue()


def setup_rows() -> tuple[int, int, int]:
    return User.objects.count(), Source.objects.count(), Campaign.objects.count()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_apply_creates_the_setup_and_says_so(tmp_path, fmt):
    output = apply(write(tmp_path, SETUP, fmt))

    assert "agents: 3 created, 0 changed, 0 unchanged" in output
    assert "sources: 2 created" in output
    assert "campaigns: 1 created" in output
    assert "6 change(s) in all." in output
    assert "created agent ava@example.com" in output
    ava = AgentProfile.objects.select_related("user").get(user__email="ava@example.com")
    assert (ava.user.display_name, ava.timezone, ava.active, ava.available) == (
        "Ava Jansen",
        "Europe/Amsterdam",
        True,
        True,
    )
    ben = AgentProfile.objects.get(user__email="ben@example.com")
    assert (ben.timezone, ben.available) == ("America/New_York", False)
    assert AgentProfile.objects.get(user__email="cy@example.com").active is False
    assert dict(Source.objects.values_list("slug", "name")) == {
        "web-form": "Website form",
        "zillow": "Zillow feed",
    }
    assert Campaign.objects.get().name == "Solar panels"


def test_applying_the_same_file_again_changes_nothing(tmp_path):
    path = write(tmp_path, SETUP)
    apply(path)

    output = apply(path)

    assert "agents: 0 created, 0 changed, 3 unchanged" in output
    assert "no changes." in output
    assert "created" not in output.replace("0 created", "")


def test_a_changed_field_is_reported_by_name(tmp_path):
    apply(write(tmp_path, SETUP))
    data = setup()
    data["agents"][0]["name"] = "Ava Jansen-Smit"
    data["sources"][1]["name"] = "Zillow premier"

    output = apply(write(tmp_path, data, name="changed"))

    assert "changed agent ava@example.com (display_name)" in output
    assert "changed source zillow (name)" in output
    assert "2 change(s) in all." in output
    assert User.objects.get(email="ava@example.com").display_name == "Ava Jansen-Smit"


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_an_export_applies_with_no_changes_and_exports_identically(tmp_path, fmt):
    apply(write(tmp_path, SETUP))
    first = export("--format", fmt)
    exported = tmp_path / f"export.{fmt}"
    exported.write_text(first)

    output = apply(exported)

    assert "no changes." in output
    assert export("--format", fmt) == first


def test_an_export_recreates_the_setup_elsewhere_tokens_included(tmp_path, api):
    apply(write(tmp_path, SETUP))
    first = export()
    assert "source-token-web-form-01" not in first  # only digests leave the database
    exported = tmp_path / "export.yaml"
    exported.write_text(first)
    User.objects.all().delete()
    Source.objects.all().delete()
    Campaign.objects.all().delete()

    output = apply(exported)

    assert "6 change(s) in all." in output
    assert export() == first
    response = api.post(
        "/api/v1/leads",
        {"first_name": "Ann", "email": "ann@example.com"},
        token="source-token-web-form-01",
    )
    assert response.status_code == 201


def test_export_to_a_file_picks_the_format_from_the_suffix(tmp_path):
    apply(write(tmp_path, SETUP))
    target = tmp_path / "out.json"

    call_command("export_config", "--output", str(target), stderr=StringIO())

    data = json.loads(target.read_text())
    assert [a["email"] for a in data["agents"]] == [
        "ava@example.com",
        "ben@example.com",
        "cy@example.com",
    ]


def test_a_dry_run_reports_and_writes_nothing(tmp_path):
    output = apply(write(tmp_path, SETUP), "--dry-run")

    assert "agents: 3 created" in output
    assert "Dry run: nothing written; 6 change(s) in all." in output
    assert setup_rows() == (0, 0, 0)


def _bad(path: tuple[str, int, str], value: Any) -> dict[str, Any]:
    data = setup()
    section, index, key = path
    data[section][index][key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_bad(("agents", 2, "email"), "not-an-email"), "agents[2].email: not a valid e-mail"),
        (_bad(("agents", 0, "colour"), "teal"), "agents[0].colour: unknown key"),
        (
            _bad(("agents", 1, "timezone"), "Mars/Olympus"),
            "agents[1].timezone: 'Mars/Olympus' is not a known time zone",
        ),
        (
            _bad(("agents", 2, "email"), "AVA@example.com"),
            "agents[2].email: ava@example.com is listed twice",
        ),
        (_bad(("agents", 0, "active"), "maybe"), "agents[0].active: 'maybe' is not true or false"),
        (
            _bad(("sources", 1, "token"), "short"),
            "sources[1].token: must be at least 16 characters",
        ),
        (
            _bad(("campaigns", 0, "slug"), "solar panels"),
            "campaigns[0].slug: 'solar panels' is not",
        ),
        (_bad(("sources", 1, "slug"), "web-form"), "sources[1].slug: web-form is listed twice"),
        (setup(sources={"slug": "web-form"}), "sources: must be a list"),
        (setup(agentz=[]), "agentz: unknown section"),
    ],
    ids=[
        "bad-email",
        "unknown-key",
        "bad-timezone",
        "duplicate-email",
        "bad-boolean",
        "short-token",
        "bad-slug",
        "duplicate-slug",
        "non-list-section",
        "unknown-section",
    ],
)
def test_an_error_names_its_key_path_and_nothing_is_applied(tmp_path, data, message):
    with pytest.raises(CommandError) as raised:
        apply(write(tmp_path, data))

    assert message in str(raised.value)
    assert "nothing applied" in str(raised.value)
    assert setup_rows() == (0, 0, 0)  # not even the good items before the bad one


def test_every_error_is_reported_at_once_and_the_stored_setup_is_untouched(tmp_path):
    apply(write(tmp_path, SETUP))
    data = setup()
    data["agents"][0]["name"] = "Renamed"
    data["agents"][1]["timezone"] = "Nowhere/Land"
    data["sources"].append({"slug": "new-source", "colour": "red"})

    with pytest.raises(CommandError) as raised:
        apply(write(tmp_path, data, name="bad"))

    assert "2 error(s)" in str(raised.value)
    assert "agents[1].timezone" in str(raised.value)
    assert "sources[2].colour: unknown key" in str(raised.value)
    assert User.objects.get(email="ava@example.com").display_name == "Ava Jansen"
    assert not Source.objects.filter(slug="new-source").exists()


def test_a_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("agents: [\n  {email: a@example.com\n")

    with pytest.raises(CommandError, match="not valid YAML or JSON"):
        apply(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        apply(tmp_path / "nope.yaml")


def test_tokens_given_in_the_file_authenticate_the_api(tmp_path, api):
    apply(write(tmp_path, SETUP))

    posted = api.post(
        "/api/v1/leads",
        {"first_name": "Ann", "email": "ann@example.com"},
        token="source-token-web-form-01",
    )
    assert posted.status_code == 201
    ava = User.objects.get(email="ava@example.com")
    mine = LeadFactory(owner=ava, assigned=True)
    assert api.get(f"/api/v1/leads/{mine.pk}", token="agent-token-ava-000001").status_code == 200

    # a new token in the file replaces the old one
    data = setup()
    data["sources"][0]["token"] = "source-token-web-form-02"
    assert "changed source web-form (token_hash)" in apply(write(tmp_path, data, name="v2"))
    assert (
        api.post(
            "/api/v1/leads", {"first_name": "Bo"}, token="source-token-web-form-01"
        ).status_code
        == 401
    )
    assert (
        api.post(
            "/api/v1/leads", {"first_name": "Bo"}, token="source-token-web-form-02"
        ).status_code
        == 201
    )


def test_a_token_already_used_elsewhere_is_refused(tmp_path):
    data = setup()
    data["sources"][1]["token"] = data["sources"][0]["token"]
    SourceFactory(slug="other", token_hash=None)
    apply(write(tmp_path, setup()))

    with pytest.raises(CommandError, match=r"sources\[1\]\.token: is already used"):
        apply(write(tmp_path, data, name="dup"))


def test_without_prune_what_the_file_does_not_name_stays(tmp_path):
    old_agent = AgentFactory(email="old@example.com")
    old_source = SourceFactory(slug="old-feed")

    apply(write(tmp_path, SETUP))

    assert AgentProfile.objects.get(user=old_agent).active is True
    assert Source.objects.get(pk=old_source.pk).active is True


def test_prune_deactivates_agents_and_sources_the_file_does_not_name(tmp_path, api):
    old_agent = AgentFactory(email="old@example.com")
    old_source = SourceFactory(slug="old-feed")
    LeadFactory(source=old_source, owner=old_agent, assigned=True)

    output = apply(write(tmp_path, SETUP), "--prune")

    assert "removed agent old@example.com (deactivated)" in output
    assert "removed source old-feed (deactivated)" in output
    assert AgentProfile.objects.get(user=old_agent).active is False
    assert Source.objects.get(pk=old_source.pk).active is False
    assert AgentProfile.objects.filter(active=True).count() == 2  # ava and ben; cy is inactive
    # a deactivated source can no longer post; nothing was deleted
    assert (
        api.post("/api/v1/leads", {"first_name": "Bo"}, token=old_source.plain_token).status_code
        == 401
    )
    assert User.objects.filter(email="old@example.com").exists()


def test_a_dry_run_prune_removes_nothing(tmp_path):
    old_source = SourceFactory(slug="old-feed")

    output = apply(write(tmp_path, SETUP), "--prune", "--dry-run")

    assert "removed source old-feed" in output
    assert Source.objects.get(pk=old_source.pk).active is True
