from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from distribution.services.claims import offers_expire
from distribution.services.distribute import leads_release_held


class Command(BaseCommand):
    help = (
        "Expire overdue offers now and move each lead on (next in line, next batch, or "
        "the fallback); also release held leads whose schedule has opened. In process, "
        "no worker needed; safe to run while the Beat sweeper runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-held", action="store_true", help="Do not release held leads")

    def handle(self, *args: Any, **options: Any) -> None:
        expired = 0
        while True:
            n = offers_expire()
            expired += n
            if n == 0:
                break
        released = 0
        if not options["no_held"]:
            while True:
                n = leads_release_held()
                released += n
                if n == 0:
                    break
        self.stdout.write(f"{expired} offer(s) expired; {released} held lead(s) released.")
