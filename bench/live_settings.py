"""Bench-only settings for bench_live: the bench settings, connections kept as in production
(CONN_MAX_AGE), the broker on Redis under the run's own key prefix (BENCH_LIVE_BROKER_URL,
BROKER_KEY_PREFIX), and a URL conf adding the reference views (live_urls). Used by the
gunicorn, the Celery workers and the import of bench_live only; never by the product."""

from __future__ import annotations

import os

from config.settings.bench import *  # noqa: F403
from config.settings.bench import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 60  # what base.py gives PostgreSQL in production
ROOT_URLCONF = "live_urls"
CELERY_BROKER_URL = os.environ["BENCH_LIVE_BROKER_URL"]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "global_keyprefix": os.environ["BROKER_KEY_PREFIX"],
}
