"""`manage.py import_leads FILE.csv`: vendor headers understood, bad rows reported by line,
good rows kept (DESIGN §7 Management commands)."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from distribution.models import DistributionAttempt
from leads.models import Lead
from tests.factories import CampaignFactory, SourceFactory

pytestmark = pytest.mark.django_db

VENDOR_CSV = """\
First Name,Last Name,E-mail,Phone,Zip,Lead ID,Campaign,Roof Type
Jane,Doe,jane@example.com,+1 212 555 0101,10001,L-1,solar,flat
Bad,Email,not-an-email,,,L-2,solar,
John,Smith,john@example.com,,02108,L-3,no-such-campaign,
Ann,Lee,ANN@Example.com,,,L-4,,pitched
"""


@pytest.fixture
def vendor() -> object:
    CampaignFactory(slug="solar")
    return SourceFactory(slug="vendor-x")


def csv_file(tmp_path: Path, text: str, name: str = "leads.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_leads", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(path: Path, *args: str) -> tuple[str, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_leads", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), str(raised.value)


def test_vendor_headers_are_understood_and_extra_columns_kept_in_attributes(tmp_path, vendor):
    good_rows = "\n".join(VENDOR_CSV.splitlines()[:2] + VENDOR_CSV.splitlines()[4:]) + "\n"

    out, _ = run(csv_file(tmp_path, good_rows), "--source", "vendor-x")

    assert "2 rows read: 2 leads imported, 0 already known" in out
    assert "0 rejected" in out
    jane = Lead.objects.get(external_id="L-1")
    assert (jane.first_name, jane.last_name, jane.email, jane.phone, jane.postcode) == (
        "Jane",
        "Doe",
        "jane@example.com",
        "+1 212 555 0101",
        "10001",
    )
    assert (jane.source.slug, jane.campaign.slug) == ("vendor-x", "solar")
    assert jane.attributes == {"Roof Type": "flat"}
    assert Lead.objects.get(external_id="L-4").attributes == {"Roof Type": "pitched"}


def test_bad_rows_are_reported_by_line_and_good_rows_kept(tmp_path, vendor):
    out, err, error = run_failing(csv_file(tmp_path, VENDOR_CSV), "--source", "vendor-x")

    # line 1 is the header
    assert "line 3: email: not a valid e-mail address." in err
    assert "line 4: campaign: unknown campaign 'no-such-campaign'." in err
    assert "line 2" not in err and "line 5" not in err
    assert "4 rows read: 2 leads imported, 0 already known" in out
    assert "2 rejected" in out
    assert "2 row(s) rejected" in error
    assert sorted(Lead.objects.values_list("external_id", flat=True)) == ["L-1", "L-4"]


def test_a_row_with_nan_coordinates_is_rejected_not_a_crash(tmp_path, vendor):
    text = "E-mail,Lat,Lng\na@example.com,nan,4.9\nb@example.com,52.1,4.9\n"

    _, err, _ = run_failing(csv_file(tmp_path, text))

    assert "line 2: latitude: 'nan' is not a number." in err
    assert list(Lead.objects.values_list("email", flat=True)) == ["b@example.com"]


def test_an_excel_file_with_a_byte_order_mark_imports(tmp_path, vendor):
    text = "E-mail,First Name\njane@example.com,Jane\n"
    out, _ = run(csv_file(tmp_path, text, encoding="utf-8-sig"), "--source", "vendor-x")

    assert "1 leads imported" in out
    assert Lead.objects.get().first_name == "Jane"


def test_importing_the_same_file_again_reports_the_rows_as_already_known(tmp_path, vendor):
    text = "Lead ID,E-mail\nA-1,a@example.com\nA-2,b@example.com\n"
    path = csv_file(tmp_path, text)
    run(path, "--source", "vendor-x")

    out, _ = run(path, "--source", "vendor-x")

    assert "2 rows read: 0 leads imported, 2 already known" in out
    assert Lead.objects.count() == 2


def test_map_overrides_a_column(tmp_path, vendor):
    text = "Contact,Ref,Colour\nrita@example.com,R-9,red\n"

    run(
        csv_file(tmp_path, text),
        "--source",
        "vendor-x",
        "--map",
        "Contact=email",
        "--map",
        "Ref=external_id",
        "--map",
        "Colour=attributes.colour",
    )

    lead = Lead.objects.get()
    assert (lead.email, lead.external_id, lead.attributes) == (
        "rita@example.com",
        "R-9",
        {"colour": "red"},
    )


def test_map_to_an_unknown_field_is_refused(tmp_path, vendor):
    _, _, error = run_failing(
        csv_file(tmp_path, "Contact\nx@example.com\n"), "--map", "Contact=e_mail"
    )

    assert "unknown lead fields: e_mail" in error
    assert Lead.objects.count() == 0


def test_a_default_campaign_applies_to_rows_without_one(tmp_path, vendor):
    CampaignFactory(slug="mortgage")
    text = "E-mail,Campaign\na@example.com,\nb@example.com,solar\n"

    run(csv_file(tmp_path, text), "--campaign", "mortgage")

    assert dict(Lead.objects.values_list("email", "campaign__slug")) == {
        "a@example.com": "mortgage",
        "b@example.com": "solar",
    }


def test_imported_leads_are_distributed_unless_asked_not_to(
    tmp_path, vendor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run(csv_file(tmp_path, "E-mail\na@example.com\n"))
    with django_capture_on_commit_callbacks(execute=True) as queued:
        run(csv_file(tmp_path, "E-mail\nb@example.com\n", name="later.csv"), "--no-distribute")

    assert Lead.objects.get(email="a@example.com").status == "unassigned"
    assert DistributionAttempt.objects.filter(lead__email="a@example.com").exists()
    assert Lead.objects.get(email="b@example.com").status == "pending"
    assert queued == []


def test_a_missing_file_is_an_error(tmp_path, vendor):
    _, _, error = run_failing(tmp_path / "nope.csv")
    assert "no such file" in error


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--source", "nope"], "--source: no source 'nope'"),
        (["--campaign", "nope"], "--campaign: no campaign 'nope'"),
        (["--map", "no-equals-sign"], "use COLUMN=FIELD"),
    ],
)
def test_bad_options_are_errors_and_import_nothing(tmp_path, vendor, option, message):
    _, _, error = run_failing(csv_file(tmp_path, "E-mail\na@example.com\n"), *option)

    assert message in error
    assert Lead.objects.count() == 0


def test_an_empty_file_is_an_error(tmp_path, vendor):
    _, _, error = run_failing(csv_file(tmp_path, ""))
    assert "no header row" in error


def test_a_file_without_source_or_ids_imported_twice_creates_its_leads_once(tmp_path, db):
    text = "First name,E-mail\nAda,ada@example.com\nBob,bob@example.com\n"
    path = csv_file(tmp_path, text)
    first, _ = run(path)
    again, _ = run(path)

    assert "2 rows read: 2 leads imported, 0 already known" in first
    assert "2 rows read: 0 leads imported, 2 already known" in again
    assert sorted(Lead.objects.values_list("first_name", "source__slug")) == [
        ("Ada", "csv-import"),
        ("Bob", "csv-import"),
    ]
    edited = csv_file(tmp_path, text.replace("Bob", "Rob"), name="edited.csv")
    out, _ = run(edited)
    assert "2 rows read: 1 leads imported, 1 already known" in out
