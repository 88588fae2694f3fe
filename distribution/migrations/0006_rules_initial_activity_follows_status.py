"""A rule whose strategy assigns gets an initial activity that fits its initial status
(seed 003: both are chosen, the activity following the status); the map is frozen here as
it was when this migration was written (distribution.models.routing.INITIAL_ACTIVITIES)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

INITIAL_ACTIVITIES = {
    "assigned": ("new_lead", "note"),
    "working": ("new_lead", "call_attempt", "email", "note"),
    "contacted": ("contact_made", "email", "meeting", "note"),
    "qualified": ("qualified", "meeting", "note"),
}
ASSIGNING = (
    "round_robin",
    "broadcast",
    "direct",
    "load_balanced",
    "weighted",
    "performance",
    "pull",
    "hopper",
)


def fill(apps: Any, schema_editor: Any) -> None:
    Rule = apps.get_model("distribution", "Rule")
    for rule in Rule.objects.all():
        allowed = INITIAL_ACTIVITIES.get(rule.initial_status, INITIAL_ACTIVITIES["assigned"])
        if rule.initial_activity in allowed:
            continue
        if rule.initial_activity or rule.strategy in ASSIGNING:
            rule.initial_activity = allowed[0]
            rule.save(update_fields=["initial_activity"])


class Migration(migrations.Migration):
    dependencies = [("distribution", "0005_webhook_attempts")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
