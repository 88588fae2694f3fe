"""The Managers and Agents groups with the model permissions of their roles (DESIGN §3)."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def create_groups(apps: Any, schema_editor: Any) -> None:
    from accounts.roles import groups_sync

    groups_sync(apps)


def drop_groups(apps: Any, schema_editor: Any) -> None:
    from accounts.roles import AGENTS, MANAGERS

    apps.get_model("auth", "Group").objects.filter(name__in=[AGENTS, MANAGERS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_agentprofile_schedule"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("leads", "0005_merged_duplicates"),
        ("crm", "0002_drop_location_latlon_index"),
        ("distribution", "0007_organisation_pool_caps_metrics_window"),
    ]

    operations = [migrations.RunPython(create_groups, drop_groups)]
