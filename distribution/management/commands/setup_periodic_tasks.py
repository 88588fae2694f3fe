from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from distribution.periodic import periodic_tasks_ensure


class Command(BaseCommand):
    help = "Create or update the periodic tasks Celery Beat runs (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        created, updated = periodic_tasks_ensure()
        self.stdout.write(f"Periodic tasks: {created} created, {updated} up to date.")
