"""Benchmarks: PostgreSQL (DATABASE_URL, default a `leadrouter_bench` database), no e-mail."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/leadrouter_bench")
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
