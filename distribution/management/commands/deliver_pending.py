from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from distribution.services import deliver_pending


class Command(BaseCommand):
    help = (
        "Make every delivery to buyers that is due, now, in process (DESIGN §7): first sends "
        "and retries whose wait has passed, going on until none is due."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        outcomes = deliver_pending(until_none_due=True)
        done = sum(outcomes.values())
        detail = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
        self.stdout.write(f"{done} delivery attempt(s)" + (f": {detail}." if detail else "."))
