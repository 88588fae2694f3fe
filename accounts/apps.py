from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Agents and users"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts.roles import groups_sync_after_migrate

        post_migrate.connect(groups_sync_after_migrate, dispatch_uid="accounts.groups_sync")
