"""Settings shared by every environment; everything that varies comes from the environment."""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=False) and (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))

SECRET_KEY = env("SECRET_KEY", default="insecure-local-development-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_beat",
    "ninja",
    "accounts",
    "leads",
    "crm",
    "distribution",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailOrUsernameBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"  # accounts.roles.home_url: each role to its pages
# how often the agent pages fetch their offers and notices again (no reload needed)
AGENT_POLL_SECONDS = env.float("AGENT_POLL_SECONDS", default=5.0)
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------
# SQLite serves the embedded run; several processes (web, worker, beat) share the file, so
# WAL, a busy timeout and BEGIN IMMEDIATE keep "database is locked" away.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Outside production, whitenoise serves static files straight from the app and static/
# folders (no collectstatic needed, also with DEBUG off).
STATIC_ROOT = env("STATIC_ROOT", default=None)
WHITENOISE_USE_FINDERS = True

# --- e-mail -----------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Leadrouter <leads@leadrouter.local>")

# --- outbound webhook (telephony / ring-all integration point) ---------------------------
NOTIFY_WEBHOOK_URL = env("NOTIFY_WEBHOOK_URL", default="")
# Signs every POST (header Leadrouter-Signature, docs/webhooks.md); empty: sent unsigned.
NOTIFY_WEBHOOK_SECRET = env("NOTIFY_WEBHOOK_SECRET", default="")

# --- geocoding leads sent without coordinates (docs/decisions.md G1) ---------------------
# A geopy geocoder name (nominatim, photon, pelias, opencage, googlev3, …); empty: off, the
# offline postal-code table only (`manage.py load_postcodes`). GEOCODER_URL points it at a
# self-hosted server (http://host:port). Asked by the worker that sells the lead, once per
# place (cached in the database), never in the ingestion request.
GEOCODER = env("GEOCODER", default="")
GEOCODER_API_KEY = env("GEOCODER_API_KEY", default="")
GEOCODER_URL = env("GEOCODER_URL", default="")
GEOCODER_TIMEOUT = env.float("GEOCODER_TIMEOUT", default=5.0)
GEOCODER_USER_AGENT = env("GEOCODER_USER_AGENT", default="leadrouter")
# --- delivery to buyers (DESIGN §4): webhook URLs resolving to loopback, private,
# link-local or reserved addresses are refused (reason url_not_public) unless this is true
DELIVERY_ALLOW_PRIVATE_NETWORKS = env.bool("DELIVERY_ALLOW_PRIVATE_NETWORKS", default=False)
# `make run` only: serve the demo's fake buyer (distribution/demo/fake_buyer.py) and point one
# demo contract's webhook at it
DEMO_FAKE_BUYER = env.bool("DEMO_FAKE_BUYER", default=False)

# --- the site's own address (links in e-mails) -----------------------------------------
SITE_URL = env("SITE_URL", default="http://localhost:8000")

# --- Celery -----------------------------------------------------------------------------
# The default broker needs no server: kombu's filesystem transport in var/broker. Its
# exchange tables (control_folder) go there too: kombu's default is ./control, which put
# them in the repository.
BROKER_DIR = Path(env("BROKER_DIR", default=str(VAR_DIR / "broker")))
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # kombu polls this transport (default every second, a second per hop for a lead)
        "polling_interval": env.float("BROKER_POLLING_INTERVAL", default=0.2),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        # a broker host that does not answer costs a web request at most this (the lead is
        # saved and pending; the sweeper queues it once the broker is back)
        "socket_connect_timeout": env.float("BROKER_CONNECT_TIMEOUT", default=1.0),
    }
    # Redis: every key under this prefix (test runs side by side on one Redis db stay apart)
    if env("BROKER_KEY_PREFIX", default=""):
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env("BROKER_KEY_PREFIX")
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Celery lanes -----------------------------------------------------------------------
# Work runs in lanes, each its own queue (DESIGN §8), so bulk work never delays a live lead
# or a timer: `live` (a lead's arrival), `timers` (offer expiry, held releases, SLAs, window
# rechecks, deliveries) and `bulk` (a rule's backlog, chunks of leads, the sweeper's
# catch-up, e-mails). Every task of ours is routed by name (tests/distribution/test_lanes.py
# checks that none is missing). A worker started without -Q consumes every queue below;
# `-Q live` (etc.) gives a lane its own worker. `celery` (the default queue) is drained too:
# a task without a route, or a message published before the lanes existed, is never stranded
# (the bulk workers consume it: docker-compose.yml, run_embedded).
LANES = ("live", "timers", "bulk")
LANE_OF_TASK = {
    "distribution.distribute_lead": "live",
    "distribution.expire_offers": "timers",
    "distribution.release_held": "timers",
    "distribution.reassign_missed_sla": "timers",
    "distribution.recheck_windows": "timers",
    "distribution.send_webhook": "timers",
    "distribution.deliver_outbound": "timers",
    "distribution.deliver_pending": "timers",
    "distribution.distribute_waiting_for_rule": "bulk",
    "distribution.distribute_leads": "bulk",
    "distribution.requeue_pending": "bulk",
    "distribution.send_emails": "bulk",
}
CELERY_TASK_ROUTES = {name: {"queue": lane} for name, lane in LANE_OF_TASK.items()}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_CREATE_MISSING_QUEUES = True
# What a worker without -Q consumes: every lane and the default queue (exchange and routing
# key named after the queue, as Celery declares a queue it creates on demand).
CELERY_TASK_QUEUES = {
    name: {"exchange": name, "routing_key": name} for name in (*LANES, CELERY_TASK_DEFAULT_QUEUE)
}

# --- worker database connections --------------------------------------------------------
# Celery's Django fixup closes every database connection before and after each task unless
# DB_REUSE_MAX is set (a new PostgreSQL connection per task, ~4.7 ms each). With it set the
# fixup closes them only every DB_REUSE_MAX tasks, and config/celery.py closes, after each
# task, the connections that are broken or older than CONN_MAX_AGE (what Django does after
# a web request). CONN_MAX_AGE 0 (SQLite, tests) keeps closing after every task.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# --- distribution -----------------------------------------------------------------------
# A lead still pending this long after it was saved is re-queued by the sweeper.
LEADROUTER_PENDING_GRACE_SECONDS = env.int("LEADROUTER_PENDING_GRACE_SECONDS", default=60)
# one queued arrival task per lane at a time on a Redis broker: a burst of arrivals is one
# message whose batch routes them all (distribution.services.queueing, decision L13)
LEADROUTER_ARRIVAL_COALESCE = env.bool("LEADROUTER_ARRIVAL_COALESCE", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # the filesystem transport has no host; kombu warns about it on every connection
        "kombu.connection": {"level": "ERROR"},
    },
}

# --- pipeline health
# /healthz answers 503 (and the dashboard flags it) past these, in seconds / messages.
HEALTH_MAX_PENDING_AGE = env.float("HEALTH_MAX_PENDING_AGE", default=120.0)
HEALTH_MAX_TIMER_LAG = env.float("HEALTH_MAX_TIMER_LAG", default=30.0)
HEALTH_MAX_QUEUE_DEPTH = env.int("HEALTH_MAX_QUEUE_DEPTH", default=10000)
