"""Tests: the database DATABASE_URL names (`make test` and .ci/run pass PostgreSQL when it
answers), else SQLite; fast hashing; eager tasks. pytest's report header names both."""

from __future__ import annotations

import os

from .base import *  # noqa: F403
from .base import BASE_DIR, env

# Explicit, never guessed here: a port that happens to answer must not change the database.
_db_url = env("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'test.sqlite3'}")
DATABASES = {"default": env.db_url_config(_db_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
else:
    # Several runs may share one PostgreSQL server (engineers side by side, CI jobs): with
    # one fixed test database name each run dropped the database of the other. One per run.
    # 0 (a connection per request / task) unless a test starts a worker that keeps them
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
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
# The key prefix of the test's real workers on that Redis: parallel runs (xdist, engineers
# side by side) each see only their own queues.
TEST_BROKER_KEY_PREFIX = env("BROKER_KEY_PREFIX", default=f"test{os.getpid()}:")
