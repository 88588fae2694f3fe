"""The Celery application: settings come from Django's `CELERY_` namespace (the lanes and
their routes: config/settings/base.py)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("leadrouter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def close_old_connections_after_task(sender: Any = None, **_: Any) -> None:
    """After a task in a worker, close the database connections that are broken or older
    than CONN_MAX_AGE, as Django does after a web request; the others are kept for the
    next task (Celery's own fixup closes them all only every DB_REUSE_MAX tasks)."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return  # in process (tests, ALWAYS_EAGER): the caller's transaction is still open
    from django.db import close_old_connections

    close_old_connections()
