from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from distribution.services import leads_distribute_pending
from leads.models import DistributionState, Lead


class Command(BaseCommand):
    help = (
        "Distribute every pending lead now, in process, without a worker (leads imported "
        "with --no-distribute included). Idempotent: "
        "leads already distributed are left alone, so it is safe to run concurrently."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", "-q", action="store_true", help="No progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        waiting = Lead.objects.filter(
            distribution_state__in=[DistributionState.PENDING, DistributionState.UNQUEUED]
        ).count()
        bar = tqdm(
            total=waiting,
            unit="lead",
            desc="Distributing",
            file=sys.stderr,
            disable=True if options["quiet"] else None,
        )
        try:
            outcomes = leads_distribute_pending(trigger="command", progress=bar.update)
        finally:
            bar.close()
        done = sum(outcomes.values())
        detail = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(outcomes.items()))
        self.stdout.write(f"{done} lead(s) processed" + (f": {detail}." if detail else "."))
