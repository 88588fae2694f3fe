"""Bench-only settings for bench_ingest: the bench settings, connections kept as in
production (CONN_MAX_AGE), and a URL conf adding a trivial JSON view beside the real API.
Never used by the product: gunicorn loads it only from bench_ingest."""

from __future__ import annotations

import os

from config.settings.bench import *  # noqa: F403
from config.settings.bench import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 60  # what base.py gives PostgreSQL in production
ROOT_URLCONF = "ingest_urls"
CELERY_BROKER_URL = os.environ.get("BENCH_INGEST_BROKER_URL", "memory://")
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
