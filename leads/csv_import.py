"""CSV import of leads: header mapping, per-row validation, good rows kept."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from leads.models import Campaign, Source
from leads.services import lead_ingest
from leads.validation import INPUT_FIELDS, LeadInputError

# Header spellings seen in vendor files, normalised (lower case, letters and digits only).
ALIASES: dict[str, str] = {
    "firstname": "first_name",
    "first": "first_name",
    "givenname": "first_name",
    "lastname": "last_name",
    "last": "last_name",
    "surname": "last_name",
    "familyname": "last_name",
    "email": "email",
    "emailaddress": "email",
    "mail": "email",
    "phone": "phone",
    "phonenumber": "phone",
    "telephone": "phone",
    "mobile": "phone",
    "tel": "phone",
    "cell": "phone",
    "zip": "postcode",
    "zipcode": "postcode",
    "postcode": "postcode",
    "postalcode": "postcode",
    "city": "city",
    "town": "city",
    "country": "country",
    "countrycode": "country",
    "latitude": "latitude",
    "lat": "latitude",
    "longitude": "longitude",
    "lng": "longitude",
    "lon": "longitude",
    "long": "longitude",
    "company": "company_name",
    "companyname": "company_name",
    "organisation": "company_name",
    "organization": "company_name",
    "companysize": "company_size",
    "employees": "company_size",
    "campaign": "campaign",
    "externalid": "external_id",
    "id": "external_id",
    "leadid": "external_id",
    "assigntoemail": "assign_to_email",
    "assigntouserid": "assign_to_user_id",
}


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def header_mapping(headers: Iterable[str], overrides: dict[str, str]) -> dict[str, str]:
    """Map each CSV column to a lead field; unmapped columns go to `attributes`."""
    mapping: dict[str, str] = {}
    for header in headers:
        if header in overrides:
            mapping[header] = overrides[header]
        elif header in INPUT_FIELDS:
            mapping[header] = header
        elif _norm(header) in ALIASES:
            mapping[header] = ALIASES[_norm(header)]
        else:
            mapping[header] = f"attributes.{header.strip()}"
    return mapping


@dataclass
class ImportResult:
    created: int = 0
    repeated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0


def _rows(
    handle: IO[str], mapping: dict[str, str], default_campaign: str | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(handle)
    for row in reader:
        data: dict[str, Any] = {"attributes": {}}
        for header, value in row.items():
            if header is None:  # more cells than headers
                data["attributes"]["_extra"] = value
                continue
            target = mapping.get(header)
            value = (value or "").strip()
            if not target or value == "":
                continue
            if target.startswith("attributes."):
                data["attributes"][target.split(".", 1)[1]] = value
            else:
                data[target] = value
        if default_campaign and not data.get("campaign"):
            data["campaign"] = default_campaign
        yield reader.line_num, data


CSV_SOURCE_SLUG = "csv-import"


def csv_import_source() -> Source:
    """The source of files imported without `--source` (it has no API token)."""
    source, _ = Source.objects.get_or_create(slug=CSV_SOURCE_SLUG, defaults={"name": "CSV import"})
    return source


def row_key(data: dict[str, Any]) -> str:
    """An external id for a row that has none: a digest of its mapped values, so importing
    the same file again finds the leads it made instead of adding them twice."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return "csv-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def leads_import_csv(
    *,
    handle: IO[str],
    source: Source | None,
    overrides: dict[str, str],
    default_campaign: str | None = None,
    queue: bool = True,
    on_row: Callable[[], object] | None = None,
) -> ImportResult:
    """Import every good row (each in its own transaction); bad rows are reported by line.

    A file without `source` comes from the "csv-import" source; a row without an external
    id gets a digest of its values as one. Either way (source, external id) makes a second
    import of the same rows report them as already known rather than create them again.
    Raises ValueError when the file has no header row.
    """
    sample = handle.readline()
    if not sample.strip():
        raise ValueError("the file is empty or has no header row")
    headers = next(csv.reader([sample]))
    handle.seek(0)
    unknown = [
        f for f in overrides.values() if f not in INPUT_FIELDS and not f.startswith("attributes.")
    ]
    if unknown:
        raise ValueError(f"--map names unknown lead fields: {', '.join(unknown)}")
    mapping = header_mapping(headers, overrides)
    campaigns = {c.slug: c for c in Campaign.objects.all()}
    source = source or csv_import_source()
    result = ImportResult()
    for line, data in _rows(handle, mapping, default_campaign):
        result.rows += 1
        if not data.get("external_id"):
            data["external_id"] = row_key(data)
        try:
            _, created = lead_ingest(
                source=source, data=data, campaigns=campaigns, queue=queue, bulk=True
            )
        except LeadInputError as exc:
            result.errors.append(
                (line, "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items()))
            )
        else:
            if created:
                result.created += 1
            else:
                result.repeated += 1
        if on_row:
            on_row()
    return result
