"""Public holidays of a country (the `holidays` package), cached per process."""

from __future__ import annotations

import functools
from datetime import date


@functools.lru_cache(maxsize=256)
def year_holidays(country: str, year: int) -> dict[date, str]:
    """One year of COUNTRY's public holidays with their names (cached per process)."""
    import holidays as holidays_pkg

    if country not in supported_countries():
        return {}  # an unknown country has no public holidays (config validation names it)
    table = holidays_pkg.country_holidays(country, years=year)
    return {d: str(n) for d, n in table.items()}


@functools.cache
def supported_countries() -> frozenset[str]:
    """The country codes the holidays package knows."""
    import holidays as holidays_pkg

    return frozenset(holidays_pkg.list_supported_countries())


def country_holidays(country: str, around: date) -> dict[date, str]:
    """The public holidays of COUNTRY from last year to two years ahead, with names."""
    table: dict[date, str] = {}
    for year in range(around.year - 1, around.year + 3):
        table.update(year_holidays(country, year))
    return dict(sorted(table.items()))
