"""The periodic tasks Beat runs, created idempotently (update_or_create by name, never
touching `enabled` of an existing task: a manager's pause survives a deploy)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    every_seconds: int


PERIODIC_TASKS: list[Periodic] = [
    Periodic("Re-queue leads still pending", "distribution.requeue_pending", 30),
    Periodic("Expire overdue offers", "distribution.expire_offers", 5),
    Periodic("Release held leads when schedules open", "distribution.release_held", 15),
    Periodic(
        "Reassign leads that missed their contact SLA", "distribution.reassign_missed_sla", 60
    ),
    Periodic("Recheck auto-distribution windows", "distribution.recheck_windows", 60),
    Periodic("Deliver sold leads that are due", "distribution.deliver_pending", 15),
]


def periodic_tasks_ensure() -> tuple[int, int]:
    """Create or update every periodic task by name, keeping whether a manager enabled it;
    never deletes others. Returns (created, updated)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = updated = 0
    for p in PERIODIC_TASKS:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=p.every_seconds, period=IntervalSchedule.SECONDS
        )
        # django-celery-beat's own idiom (DatabaseScheduler.from_entry): the schedule is ours,
        # `enabled` is the manager's, so it is set only when the task is created.
        _, was_created = PeriodicTask.objects.update_or_create(
            name=p.name,
            defaults={"task": p.task, "interval": interval},
            create_defaults={"task": p.task, "interval": interval, "enabled": True},
        )
        created += was_created
        updated += not was_created
    return created, updated
