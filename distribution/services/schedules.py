"""Writes of schedules: the public holidays of a schedule's country."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from distribution.loaders.holidays import country_holidays
from distribution.models import Holiday, Schedule


def schedule_fill_holidays(*, schedule_id: int, today: datetime | None = None) -> int:
    """Store the public holidays of the schedule's country (last year to two years ahead)
    as holiday rows; entered holidays are kept. Returns how many were added."""
    schedule = Schedule.objects.get(pk=schedule_id)
    if not schedule.holiday_country:
        return 0
    day = (today or timezone.now()).date()
    table = country_holidays(schedule.holiday_country, day)
    existing = set(schedule.holidays.values_list("date", flat=True))
    rows = [
        Holiday(schedule=schedule, date=d, name=name[:200], origin=Holiday.Origin.COUNTRY)
        for d, name in table.items()
        if d not in existing
    ]
    Holiday.objects.bulk_create(rows)
    return len(rows)
