from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.errors import MarketplaceError
from distribution.services import windows_recheck_due


class Command(BaseCommand):
    help = (
        "Recheck the auto-distribution windows that are due, now, in process (what Beat "
        "runs every minute): newly eligible contracts get the lead until its maximum "
        "multiplication is reached or the window ends."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit", type=int, default=500, help="At most this many windows (default 500)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            outcomes = windows_recheck_due(limit=options["limit"])
        except MarketplaceError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        done = sum(outcomes.values())
        detail = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(outcomes.items()))
        self.stdout.write(f"{done} window(s) rechecked" + (f": {detail}." if detail else "."))
