"""Settings shared by every environment, read from the environment with django-environ.

Every variable is listed in the README's table and in `.env.example`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import django_stubs_ext
import environ
from celery.schedules import schedule as celery_schedule
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from oppsync_site import file_broker

# Lets admin and form classes be subscripted at run time, as their type hints are.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A `.env` file in the checkout is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("OPPSYNC_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if not SECRET_KEY.strip():
    # An empty key signs sessions and password resets with nothing: refused like a missing one.
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is empty; set it to a long random value.")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    # The admin with OppSync's own site (navigation, the sync status page).
    "oppsync_site.admin_config.OppSyncAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oppsync_site",
    "people",
    "opportunities",
    "smartlists",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "oppsync_site.api_errors.ApiNotFoundJsonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "oppsync_site.middleware.SubscriptionContextMiddleware",
    # Last, as django-axes asks: it answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
]

# Login attempts are throttled (django-axes): after AXES_FAILURE_LIMIT failures for one user name
# from one address, that pair waits AXES_COOLOFF_TIME. API tokens do not log in, so they are not.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

ROOT_URLCONF = "oppsync_site.urls"
WSGI_APPLICATION = "oppsync_site.wsgi.application"

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
                "oppsync_site.context_processors.subscription",
            ],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL says otherwise -------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'oppsync.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; the timeout rides out short write locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # The live roles' index INCLUDEs columns for PostgreSQL's index-only scans; SQLite builds it
    # without them, as the warning says, and loses nothing it had.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compilation costs 100-300 ms on every smart-list count over a big org (the planner's cost
    # crosses jit_above_cost) and buys nothing for queries that scan once; a DATABASE_URL that
    # sets `options` itself keeps its own.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker and cache when REDIS_URL is set ---------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # A database cache is shared by every process and machine that shares the database, and its
    # `add()` is atomic, which the sync lock relies on.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "oppsync_cache",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGIN_URL = "admin:login"

# --- REST framework ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["oppsync_site.api.permissions.RolePermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "oppsync_site.api.common.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "oppsync_site.api.filters.KnownQueryParameters",
        "django_filters.rest_framework.DjangoFilterBackend",
    ],
    "EXCEPTION_HANDLER": "oppsync_site.api.common.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "oppsync_site.api.throttling.AtomicAnonRateThrottle",
        "oppsync_site.api.throttling.AtomicUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "user": env.str("API_THROTTLE_USER", default="1200/minute"),
    },
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OppSync API",
    "DESCRIPTION": "A read-only copy of Salesforce opportunities, their people and their history.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Salesforce (contract §1) -----------------------------------------------------------------------
SALESFORCE_LOGIN_URL = env.str("SALESFORCE_LOGIN_URL", default="https://login.salesforce.com")
SALESFORCE_CLIENT_ID = env.str("SALESFORCE_CLIENT_ID", default="")
SALESFORCE_CLIENT_SECRET = env.str("SALESFORCE_CLIENT_SECRET", default="")
SALESFORCE_USERNAME = env.str("SALESFORCE_USERNAME", default="")
SALESFORCE_PRIVATE_KEY_FILE = env.str("SALESFORCE_PRIVATE_KEY_FILE", default="")
SALESFORCE_REFRESH_TOKEN = env.str("SALESFORCE_REFRESH_TOKEN", default="")
SALESFORCE_PASSWORD = env.str("SALESFORCE_PASSWORD", default="")
SALESFORCE_SECURITY_TOKEN = env.str("SALESFORCE_SECURITY_TOKEN", default="")
SALESFORCE_API_VERSION = env.str("SALESFORCE_API_VERSION", default="59.0")
SALESFORCE_CA_BUNDLE = env.str("SALESFORCE_CA_BUNDLE", default="")
SALESFORCE_SYNC_INTERVAL = env.float("SALESFORCE_SYNC_INTERVAL", default=5.0)
SALESFORCE_API_BUDGET = env.float("SALESFORCE_API_BUDGET", default=0.25)
SALESFORCE_QUOTA_PAUSE = env.float("SALESFORCE_QUOTA_PAUSE", default=0.8)
# Tuning knobs of the sync (README lists them); the defaults suit a real org.
SALESFORCE_LOOKBACK_SECONDS = env.float("SALESFORCE_LOOKBACK_SECONDS", default=60.0)
SALESFORCE_CLOCK_LEAD_SECONDS = env.float("SALESFORCE_CLOCK_LEAD_SECONDS", default=5.0)
SALESFORCE_DESCRIBE_INTERVAL = env.float("SALESFORCE_DESCRIBE_INTERVAL", default=60.0)
SALESFORCE_DELETED_INTERVAL = env.float("SALESFORCE_DELETED_INTERVAL", default=60.0)
SALESFORCE_RECONCILE_INTERVAL = env.float("SALESFORCE_RECONCILE_INTERVAL", default=24 * 3600.0)
SALESFORCE_BULK_THRESHOLD = env.int("SALESFORCE_BULK_THRESHOLD", default=50_000)
SALESFORCE_SYNC_LOCK_SECONDS = env.float("SALESFORCE_SYNC_LOCK_SECONDS", default=120.0)
SALESFORCE_CONNECT_TIMEOUT = env.float("SALESFORCE_CONNECT_TIMEOUT", default=10.0)
SALESFORCE_READ_TIMEOUT = env.float("SALESFORCE_READ_TIMEOUT", default=180.0)
SALESFORCE_RETRY_BACKOFF = env.float("SALESFORCE_RETRY_BACKOFF", default=1.0)
# A record set aside (it could not be stored) is re-read after this many seconds, the wait
# doubling with each attempt up to an hour.
SALESFORCE_SET_ASIDE_RETRY_SECONDS = env.float("SALESFORCE_SET_ASIDE_RETRY_SECONDS", default=60.0)
SYNC_HISTORY_DAYS = env.float("SYNC_HISTORY_DAYS", default=14.0)

# --- Change events wake the sync (contract §1, issue P15) ---------------------------------------------
SALESFORCE_PUBSUB_URL = env.str("SALESFORCE_PUBSUB_URL", default="api.pubsub.salesforce.com:7443").strip()
_pubsub_host, _, _pubsub_port = SALESFORCE_PUBSUB_URL.rpartition(":")
if not _pubsub_host or not _pubsub_port.isdigit() or "/" in SALESFORCE_PUBSUB_URL:
    raise ImproperlyConfigured(
        f"SALESFORCE_PUBSUB_URL must be host:port (e.g. api.pubsub.salesforce.com:7443), not {SALESFORCE_PUBSUB_URL!r}."
    )
SALESFORCE_CDC = env.str("SALESFORCE_CDC", default="auto").strip().lower()
if SALESFORCE_CDC not in ("auto", "off"):
    raise ImproperlyConfigured(
        f"SALESFORCE_CDC must be 'auto' (wake the sync on change events when the org offers them) "
        f"or 'off' (poll only), not {SALESFORCE_CDC!r}."
    )
SALESFORCE_CDC_TOPICS = [
    topic.strip()
    for topic in env.list(
        "SALESFORCE_CDC_TOPICS",
        default=[
            "/data/OpportunityChangeEvent",
            "/data/ContactChangeEvent",
            "/data/LeadChangeEvent",
            "/data/OpportunityContactRoleChangeEvent",
        ],
    )
    if topic.strip()
]
if not SALESFORCE_CDC_TOPICS or any(not topic.startswith("/") for topic in SALESFORCE_CDC_TOPICS):
    raise ImproperlyConfigured(
        "SALESFORCE_CDC_TOPICS must list Pub/Sub topics such as /data/OpportunityChangeEvent "
        f"(comma-separated), not {env.str('SALESFORCE_CDC_TOPICS', default='')!r}."
    )
SALESFORCE_SAFETY_POLL_INTERVAL = env.float("SALESFORCE_SAFETY_POLL_INTERVAL", default=60.0)
if SALESFORCE_SAFETY_POLL_INTERVAL <= 0:
    raise ImproperlyConfigured("SALESFORCE_SAFETY_POLL_INTERVAL must be a positive number of seconds.")
# Tuning knobs of the listener (README lists them): the quiet time that gathers a burst of events
# into one wake-up; the server's keepalive period (270 s at Salesforce) and the margin after which
# a silent stream is rebuilt; the cap of the backoff after transient errors and the slow timer
# after which a stream that is not available (CDC off for an object, no permission, deliveries
# used up) is tried again.
SALESFORCE_CDC_DEBOUNCE_MS = env.float("SALESFORCE_CDC_DEBOUNCE_MS", default=30.0)
SALESFORCE_CDC_KEEPALIVE_SECONDS = env.float("SALESFORCE_CDC_KEEPALIVE_SECONDS", default=270.0)
SALESFORCE_CDC_KEEPALIVE_MARGIN_SECONDS = env.float("SALESFORCE_CDC_KEEPALIVE_MARGIN_SECONDS", default=30.0)
SALESFORCE_CDC_BACKOFF_MAX_SECONDS = env.float("SALESFORCE_CDC_BACKOFF_MAX_SECONDS", default=60.0)
SALESFORCE_CDC_RETRY_SECONDS = env.float("SALESFORCE_CDC_RETRY_SECONDS", default=300.0)
# A zero or negative figure would make the listener rebuild its stream (and log in) in a tight loop.
for _name in (
    "SALESFORCE_CDC_KEEPALIVE_SECONDS",
    "SALESFORCE_CDC_KEEPALIVE_MARGIN_SECONDS",
    "SALESFORCE_CDC_BACKOFF_MAX_SECONDS",
    "SALESFORCE_CDC_RETRY_SECONDS",
):
    if not globals()[_name] > 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number of seconds.")
if not SALESFORCE_CDC_DEBOUNCE_MS >= 0:
    raise ImproperlyConfigured(
        "SALESFORCE_CDC_DEBOUNCE_MS must be zero or a positive number of milliseconds."
    )

# --- Trigger campaigns and webhooks (contract §1, §5) --------------------------------------------------
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=False)
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=5.0)
WEBHOOK_READ_TIMEOUT = env.float("WEBHOOK_READ_TIMEOUT", default=10.0)
# The whole attempt (a read timeout counts per receive; a trickling receiver never trips it).
WEBHOOK_ATTEMPT_SECONDS = env.float(
    "WEBHOOK_ATTEMPT_SECONDS", default=WEBHOOK_CONNECT_TIMEOUT + WEBHOOK_READ_TIMEOUT
)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
# Beat's safety net: re-queues deliveries whose message was lost and evaluates what was missed.
WEBHOOK_SWEEP_INTERVAL = env.float("WEBHOOK_SWEEP_INTERVAL", default=5.0)
# The sync hands its activities to trigger evaluation at once (the sweep catches up otherwise).
TRIGGERS_DISPATCH = env.bool("TRIGGERS_DISPATCH", default=True)

# --- Celery ------------------------------------------------------------------------------------------
# Without Redis, kombu's file-system transport with an atomic put (oppsync_site/file_broker.py).
CELERY_BROKER_URL = REDIS_URL or file_broker.register()
if not REDIS_URL:
    _broker_dir = VAR_DIR / "celery-broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # The file transport polls its folder; a tenth of a second keeps sync ticks prompt.
        "polling_interval": 0.1,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
# A task is acknowledged after it ran, so a worker killed mid-task leaves it for another worker.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue("default"), Queue("sync"), Queue("triggers"), Queue("webhooks")]
CELERY_TASK_ROUTES = {
    "opportunities.sync.*": {"queue": "sync"},
    "campaigns.triggers.*": {"queue": "triggers"},
    "campaigns.webhooks.*": {"queue": "webhooks"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_HEARTBEAT_INTERVAL = env.float("CELERY_HEARTBEAT_INTERVAL", default=30.0)
# The beat schedule, in one place.
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "oppsync_site.tasks.heartbeat",
        "schedule": celery_schedule(CELERY_HEARTBEAT_INTERVAL),
        "options": {"expires": CELERY_HEARTBEAT_INTERVAL},
    },
    "salesforce-sync-cycle": {
        "task": "opportunities.sync.tasks.sync_cycle",
        "schedule": celery_schedule(SALESFORCE_SYNC_INTERVAL),
        # A tick that waited longer than an interval is stale: the next one replaces it.
        "options": {"queue": "sync", "expires": max(SALESFORCE_SYNC_INTERVAL, 1.0)},
    },
    "campaigns-sweep": {
        "task": "campaigns.webhooks.sweep",
        "schedule": celery_schedule(WEBHOOK_SWEEP_INTERVAL),
        "options": {"queue": "webhooks", "expires": WEBHOOK_SWEEP_INTERVAL},
    },
    "throttle-counters-prune": {
        "task": "oppsync_site.tasks.throttle_counters_prune",
        "schedule": celery_schedule(3600.0),
        "options": {"expires": 3600.0},
    },
    "totals-coverage-ensure": {
        "task": "opportunities.sync.tasks.totals_coverage_ensure",
        "schedule": celery_schedule(60.0),
        "options": {"expires": 60.0},
    },
    "sync-history-prune": {
        "task": "opportunities.sync.tasks.sync_history_prune",
        "schedule": celery_schedule(3600.0),
        "options": {"expires": 3600.0},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
