"""The organisation's routing defaults: the one row rules inherit business hours and an
after-hours policy from (seed 003)."""

from __future__ import annotations

from distribution.models import Organisation


def organisation_get() -> Organisation:
    """The organisation row, created with its defaults on first use (hold after hours; ring
    all to the Lead Assignment queue; no business hours = always open)."""
    org, _ = Organisation.objects.get_or_create(pk=1)
    return org
