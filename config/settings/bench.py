"""Benchmarks: PostgreSQL in a database of the bench's own (never DATABASE_URL, which in a
shell usually names a database someone is using), no e-mail.

`bench/run.py` picks BENCH_DATABASE_URL (a `leadrouter_bench_<run>` database on the local
server, dropped at the end) and passes it to every process of the run; set it to keep a
database of your choosing (then it is not dropped)."""

from __future__ import annotations

import os

from .base import *  # noqa: F403
from .base import env

BENCH_SERVER_URL = env("BENCH_SERVER_URL", default="postgres://postgres@127.0.0.1:5432")
DATABASES = {
    "default": env.db_url_config(
        env("BENCH_DATABASE_URL", default=f"{BENCH_SERVER_URL}/leadrouter_bench_{os.getpid()}")
    )
}
DEBUG = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"handlers": [], "level": "WARNING"},
}
# Tasks the benchmarks queue (e-mails after assignment) are published, as in production,
# but to memory: nothing consumes them, and a file-system queue would keep them on disk.
CELERY_BROKER_URL = env("BENCH_BROKER_URL", default="memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
