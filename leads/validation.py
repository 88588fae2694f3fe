"""Validation of lead input shared by the API and the CSV import: field errors by name."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from config.errors import DomainError
from leads.caches import campaign_for_slug
from leads.models import Campaign, Lead

MAX_LENGTHS: dict[str, int] = {
    f.name: f.max_length
    for f in Lead._meta.concrete_fields
    if f.max_length and f.name in (*Lead.COLUMN_FIELDS, "external_id")
}
PHONE_RE = re.compile(r"^[0-9+()./\-\s]{3,40}$")
INPUT_FIELDS = (*Lead.COLUMN_FIELDS, "external_id", "campaign", "attributes")


class LeadInputError(DomainError):
    """Invalid lead input; `errors` maps each field to its messages."""

    code = "invalid"
    status = 422

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("The lead has invalid fields.", errors=errors)

    def __str__(self) -> str:
        # the log and CSV-report form: every field with its messages
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items())


def _number(
    value: Any,
    field: str,
    errors: dict[str, list[str]],
    *,
    integer: bool = False,
    lo: float | None = None,
    hi: float | None = None,
) -> float | int | None:
    if value in (None, ""):
        return None
    try:
        number: float | int = int(value) if integer else float(value)
        if number != number:  # NaN ("nan" in a CSV, NaN in JSON) passes any range check
            raise ValueError(value)
    except (TypeError, ValueError):
        kind = "whole number" if integer else "number"
        errors.setdefault(field, []).append(f"{value!r} is not a {kind}.")
        return None
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        errors.setdefault(field, []).append(f"must be between {lo} and {hi}.")
        return None
    return number


def clean_lead_input(
    data: dict[str, Any], *, campaigns: dict[str, Campaign] | None = None
) -> dict[str, Any]:
    """Return model-ready values for a lead, or raise LeadInputError naming every bad field.

    CAMPAIGNS (slug → Campaign) lets a bulk import look campaigns up once.
    """
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for name in (
        "first_name",
        "last_name",
        "phone",
        "postcode",
        "city",
        "company_name",
        "assign_to_user_id",
        "external_id",
        "country",
        "email",
        "assign_to_email",
    ):
        value = data.get(name)
        out[name] = "" if value is None else str(value).strip()
        limit = MAX_LENGTHS.get(name)
        if limit and len(out[name]) > limit:
            errors.setdefault(name, []).append(f"at most {limit} characters.")
    for name in ("email", "assign_to_email"):
        if out[name]:
            try:
                validate_email(out[name])
            except ValidationError:
                errors.setdefault(name, []).append("not a valid e-mail address.")
    if out["phone"] and not PHONE_RE.match(out["phone"]):
        errors.setdefault("phone", []).append("not a valid phone number.")
    if out["country"]:
        out["country"] = out["country"].upper()
        if not re.fullmatch(r"[A-Z]{2}", out["country"]):
            errors.setdefault("country", []).append("use a two-letter ISO country code.")
    out["latitude"] = _number(data.get("latitude"), "latitude", errors, lo=-90, hi=90)
    out["longitude"] = _number(data.get("longitude"), "longitude", errors, lo=-180, hi=180)
    out["company_size"] = _number(
        data.get("company_size"), "company_size", errors, integer=True, lo=0, hi=10**9
    )
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict):
        errors.setdefault("attributes", []).append("must be an object.")
        attributes = {}
    out["attributes"] = attributes
    slug = data.get("campaign")
    out["campaign"] = None
    if slug not in (None, ""):
        campaign = (
            campaigns.get(str(slug)) if campaigns is not None else campaign_for_slug(str(slug))
        )
        if campaign is None:
            errors.setdefault("campaign", []).append(f"unknown campaign {slug!r}.")
        out["campaign"] = campaign
    if not (
        out["email"] or out["phone"] or out["first_name"] or out["last_name"] or out["company_name"]
    ):
        errors.setdefault("email", []).append(
            "a lead needs at least an e-mail, a phone, a name or a company."
        )
    if errors:
        raise LeadInputError(errors)
    return out
