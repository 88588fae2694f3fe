from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.models import Schedule
from distribution.services.schedules import schedule_fill_holidays


class Command(BaseCommand):
    help = (
        "Store the public holidays of each schedule's holiday_country (last year to two "
        "years ahead, from the holidays package) as holiday rows; entered ones are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--schedule",
            action="append",
            default=[],
            help="Only this schedule (by name; repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        schedules = Schedule.objects.exclude(holiday_country="").order_by("name")
        if options["schedule"]:
            schedules = schedules.filter(name__in=options["schedule"])
            missing = set(options["schedule"]) - {s.name for s in schedules}
            if missing:
                raise CommandError(
                    f"no schedule with a holiday country named {', '.join(sorted(missing))}"
                )
        total = 0
        for schedule in schedules:
            added = schedule_fill_holidays(schedule_id=schedule.pk)
            total += added
            self.stdout.write(f"{schedule.name} ({schedule.holiday_country}): {added} added")
        self.stdout.write(f"{total} holiday(s) added.")
