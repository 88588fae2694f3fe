"""Tests: PostgreSQL when reachable (CI starts it), else SQLite; fast hashing; eager off."""

from __future__ import annotations

import os
import socket

from .base import *  # noqa: F403
from .base import BASE_DIR, env


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if "DATABASE_URL" in env:
    _db_url = env("DATABASE_URL")
elif _reachable("127.0.0.1", 5432) and not env.bool("TEST_FORCE_SQLITE", default=False):
    _db_url = "postgres://postgres@127.0.0.1:5432/leadrouter"
else:
    _db_url = f"sqlite:///{BASE_DIR / 'var' / 'test.sqlite3'}"
DATABASES = {"default": env.db_url_config(_db_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
else:
    # Several runs may share one PostgreSQL server (engineers side by side, CI jobs): with
    # one fixed test database name each run dropped the database of the other. One per run.
    DATABASES["default"]["TEST"] = {
        "NAME": env(
            "TEST_DATABASE_NAME", default=f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
        ),
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEBUG = False
ALLOWED_HOSTS = ["*"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Unit tests run tasks in process; the end-to-end tests start a real worker on Redis.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
TEST_REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
