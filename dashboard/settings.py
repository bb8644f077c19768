"""Settings, all from the environment (see the README for every variable)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF

from dashboard.core.env import envbool, envfloat, envint, envlist, envsecret, envstr
from dashboard.core.middleware_list import MiddlewareList
from dashboard.core.private_files import private_dir, private_file, sqlite_file

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = private_dir(Path(envstr("MQB_STATE_DIR", str(BASE_DIR / "var"))))


def _secret_key() -> str:
    """DJANGO_SECRET_KEY(_FILE), else a key generated once and kept in the state dir."""
    key = envsecret("DJANGO_SECRET_KEY")
    if key:
        return key
    path = STATE_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS", "")
CSRF_FAILURE_VIEW = "dashboard.core.api.csrf_failure"  # JSON under /api/
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("MQB_BEHIND_HTTPS_PROXY", False) else None
)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("MQB_SECURE_COOKIES", False)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# HTTPS in production (README, "Production settings"): off by default so that
# `make demo` on http://127.0.0.1 works; `check --deploy` asks for all of them.
SECURE_SSL_REDIRECT = envbool("MQB_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = envint("MQB_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("MQB_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("MQB_SECURE_HSTS_PRELOAD", False)
# Pages load scripts, styles and images only from the dashboard itself, never
# inline; websockets go to the same origin ('self' covers ws/wss under CSP 3).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

INSTALLED_APPS = [
    "daphne",  # first, so runserver is Daphne's ASGI server
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "ninja",  # the API docs page: its templates and Swagger UI static files
    "dashboard",
]

MIDDLEWARE = MiddlewareList(
    [
        # Async end to end: Django's and WhiteNoise's middleware with their hooks run in
        # the event loop under Daphne, no thread per hook (core/middleware.py).
        "dashboard.core.middleware.SecurityMiddleware",
        # Gzip for answers over MQB_GZIP_MIN_BYTES (never streaming ones): outside every
        # middleware that reads or rewrites a body (core/compress.py).
        "dashboard.core.compress.GZipLargeMiddleware",
        "dashboard.core.middleware.CSPMiddleware",
        # Outside every middleware that may answer: /api/ errors are JSON whoever answers.
        "dashboard.core.api.ApiErrorMiddleware",
        "dashboard.core.middleware.StaticFilesMiddleware",
        "dashboard.core.middleware.SessionMiddleware",
        "dashboard.core.middleware.CommonMiddleware",
        "dashboard.core.middleware.CsrfViewMiddleware",
        # Django's AuthenticationMiddleware with the session and the user read through
        # the cache, from Redis without a thread under ASGI (core/login.py).
        "dashboard.core.login.CachedUserMiddleware",
        "dashboard.core.login.LoginRequiredMiddleware",
        "dashboard.core.middleware.MessageMiddleware",
        "dashboard.core.middleware.XFrameOptionsMiddleware",
        "axes.middleware.AxesMiddleware",  # turns a lockout into the lockout page
        "dashboard.core.errors.BrokerErrorMiddleware",
    ]
)

ROOT_URLCONF = "dashboard.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                # After Django's built-in csrf processor: one masked token per request.
                "dashboard.core.csrf.csrf",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.core.context_processors.roles",
            ],
            # {% load ui %}: badges, times and numbers (dashboard.core.display).
            "libraries": {
                "ui": "dashboard.core.templatetags.ui",
                "schedule_ui": "dashboard.deadletters.templatetags.schedule_ui",
                "policy_ui": "dashboard.deadletters.templatetags.policy_ui",
                "redirect_ui": "dashboard.deadletters.templatetags.redirect_ui",
                "alert_ui": "dashboard.alerts.templatetags.alert_ui",
            },
        },
    }
]
WSGI_APPLICATION = None
ASGI_APPLICATION = "dashboard.asgi.application"

_default_db = f"sqlite:///{STATE_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(envstr("DATABASE_URL", _default_db))}
# A web process runs the sync part of requests (database queries among it) on this
# many long-lived threads, each request on one (core/asgi_handler.py); 0: Django's
# own handler, a new thread for each request.
MQB_WEB_SYNC_THREADS = envint("MQB_WEB_SYNC_THREADS", 4)
# Each of those threads keeps its database connection for this many seconds, checked
# before a request uses it; with a thread per request (0 threads) connections close
# at each request's end, since a persistent one would outlive its thread unclosed.
DATABASES["default"]["CONN_MAX_AGE"] = (
    envint("MQB_DB_CONN_MAX_AGE", 300) if MQB_WEB_SYNC_THREADS > 0 else 0
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, collector and worker write to one file: WAL lets readers run during
    # a write, IMMEDIATE transactions avoid "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Created here, owner-only, before SQLite creates it with the umask's mode.
    _db_file = sqlite_file(DATABASES["default"]["NAME"])
    if _db_file is not None:
        private_file(_db_file)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Login throttling (django-axes): a username is locked out from one address
# after MQB_LOGIN_FAILURE_LIMIT wrong passwords in a row, for
# MQB_LOGIN_COOLOFF_MINUTES after the last one; other users and other
# addresses are not. `manage.py axes_reset_username NAME` (or deleting the
# access attempt in the admin) unlocks at once.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out logins
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("MQB_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envfloat("MQB_LOGIN_COOLOFF_MINUTES", 15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dashboard.core.login.lockout_response"
AXES_VERBOSE = False  # no banner in every process's log; lockouts are still logged
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("MQB_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Django's storage; a file's URL worked out once per process (core/static.py).
    "staticfiles": {"BACKEND": "dashboard.core.static.StaticFilesStorage"},
}
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's target; nginx serves /static/ from it (ops/nginx.sh reads the same variable).
STATIC_ROOT = Path(envstr("MQB_STATIC_ROOT", str(STATE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from static/ without a collectstatic step; fine at our scale.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
MQB_CHANNEL_PREFIX = envstr("MQB_CHANNEL_PREFIX", "mqboard")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 gives every socket a 5 s read timeout, and channels_redis
            # blocks in BZPOPMIN for 5 s: an idle websocket would fail on the
            # race between the two. Reads may block longer than the BZPOPMIN.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
            "prefix": MQB_CHANNEL_PREFIX,
            "expiry": 30,
        },
    }
}

# -- Request floor: sessions and the logged-in user are read from Redis, not the database --
# The default cache: Django's own Redis backend on REDIS_URL, keys under
# MQB_CHANNEL_PREFIX (so test runs and several dashboards on one Redis stay apart).
# Short socket timeouts: a stuck Redis fails a request rather than hanging it.
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        # Django's Redis backend; writes of sessions and users are published to
        # every web process's memo of them (core/cache.py, core/keymemo.py).
        "BACKEND": "dashboard.core.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{MQB_CHANNEL_PREFIX}:cache",
        "OPTIONS": {"socket_timeout": 5, "socket_connect_timeout": 5},
    },
    # Rendered fragments a web process keeps for itself ({% cache … using="fragments" %}):
    # parts of pages that the collector's sample and the query fully determine, keyed on both.
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "mqb-fragments",
        "TIMEOUT": 60,
        "OPTIONS": {"MAX_ENTRIES": 500},
    },
}
# Sessions are read from the cache and written through to the database: a
# request reads no session row, and a flushed Redis logs nobody out. Expiry,
# logout (flush deletes both copies) and key cycling at login are Django's.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "default"
# Seconds a logged-in user (with their role for the page header) stays cached at
# most; saving or deleting the user or a group drops it at once (core/login.py).
MQB_USER_CACHE_SECONDS = envint("MQB_USER_CACHE_SECONDS", 60)
# Seconds a web process answers a session or a user from its own memory at most;
# every write drops them in every process at once, through Redis pub/sub, and the
# memo is off whenever that subscription is (core/keymemo.py). 0: read Redis every time.
MQB_AUTH_MEMO_SECONDS = envint("MQB_AUTH_MEMO_SECONDS", 30)
# Answers of at least this many bytes are gzipped when the client accepts it
# (streaming answers never), at this zlib level (1: fastest, 9: smallest).
MQB_GZIP_MIN_BYTES = envint("MQB_GZIP_MIN_BYTES", 4096)
MQB_GZIP_LEVEL = envint("MQB_GZIP_LEVEL", 1)
# The largest JSON answers (a page of Kafka records) are built as JSON by their
# view and sent as built; with this on they are also validated against their
# response schema, and a difference is an error (on under the tests: the schema
# check costs a page of 100 records about 2 ms, as much as reading it).
MQB_API_CHECK_ANSWERS = envbool("MQB_API_CHECK_ANSWERS", False)

CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_DEFAULT_QUEUE = envstr("MQB_CELERY_QUEUE", "mqboard")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# The dashboard's own knobs.
MQB_BROKER_TIMEOUT = envfloat("MQB_BROKER_TIMEOUT", 4.0)
MQB_SAMPLE_INTERVAL = envfloat("MQB_SAMPLE_INTERVAL", 5.0)
# The collectors' leader lease TTL in seconds (0: half the sample interval, at
# least 1 s): renewed every quarter of it; a paused leader keeps the lease for 3x
# it, at least 10 s; see dashboard/collector/lease.py.
MQB_COLLECTOR_LEASE_TTL = envfloat("MQB_COLLECTOR_LEASE_TTL", 0.0)
MQB_DISPLAY_LIMIT = envint("MQB_DISPLAY_LIMIT", 64 * 1024)

# -- RabbitMQ browsing (queues, exchanges, messages) --
# Queues a type/state/dead-letter filter (and the "receives dead letters from"
# search) may read, 500 per management request, before stopping and saying so.
MQB_RABBITMQ_SCAN_LIMIT = envint("MQB_RABBITMQ_SCAN_LIMIT", 2000)
# Most messages one peek may read (each is requeued and marked redelivered).
MQB_RABBITMQ_PEEK_MAX = envint("MQB_RABBITMQ_PEEK_MAX", 50)
# Bytes of bodies one peek may read; it stops after the message that crosses this.
MQB_RABBITMQ_PEEK_BYTES = envint("MQB_RABBITMQ_PEEK_BYTES", 64 * 1024 * 1024)
# Seconds peeked bodies stay downloadable (kept in Redis, under MQB_CHANNEL_PREFIX).
MQB_RABBITMQ_PEEK_TTL = envint("MQB_RABBITMQ_PEEK_TTL", 900)
# Bytes of peeked bodies kept for download per user (their oldest peeks make room first)
# and in all (when full, a new peek's bodies are not kept): Redis also carries Celery and
# Channels, which must never run out of room.
MQB_RABBITMQ_PEEK_STORE_USER_BYTES = envint("MQB_RABBITMQ_PEEK_STORE_USER_BYTES", 64 << 20)
MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES = envint("MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES", 256 << 20)

# -- Jobs (bulk moves and requeues run by the Celery worker) --
# Seconds between a running job's progress reports (database row + websocket
# push); pause and cancel are noticed at the next report.
MQB_JOB_PROGRESS_INTERVAL = envfloat("MQB_JOB_PROGRESS_INTERVAL", 0.5)
# A running job with no report for this long is shown as possibly stuck.
MQB_JOB_STALE_AFTER = envfloat("MQB_JOB_STALE_AFTER", 30.0)
# A running job with no report for this long is queued again (its worker is
# gone); a job whose worker restarts under the same name is queued at once.
MQB_JOB_REVIVE_AFTER = envfloat("MQB_JOB_REVIVE_AFTER", 300.0)
# Messages a move holds unacked at once at most (the prefetch window): RabbitMQ
# confirms persistent messages in batches, so thousands in flight are what
# make a move fast. Also bounds the duplicates a lost connection can leave.
MQB_MOVE_PREFETCH = envint("MQB_MOVE_PREFETCH", 4000)
# ... and at most this many bytes of message bodies (big messages, small window).
MQB_MOVE_WINDOW_BYTES = envint("MQB_MOVE_WINDOW_BYTES", 16 * 1024 * 1024)
# A move whose publishes get no confirm for this long stops ("stalled").
MQB_MOVE_STALL_TIMEOUT = envfloat("MQB_MOVE_STALL_TIMEOUT", 60.0)

# -- Kafka browsing (topics, messages, consumer groups) --
# Rows per page of the topics and consumer-groups lists (watermarks, configs
# and lag are fetched only for the rows shown).
MQB_KAFKA_PAGE_SIZE = envint("MQB_KAFKA_PAGE_SIZE", 50)
# Records per page of the message browser, by default and at most.
MQB_KAFKA_BROWSE_LIMIT = envint("MQB_KAFKA_BROWSE_LIMIT", 50)
MQB_KAFKA_BROWSE_MAX = envint("MQB_KAFKA_BROWSE_MAX", 500)
# A page of records stops early once its keys and values reach this many bytes.
MQB_KAFKA_BROWSE_MAX_BYTES = envint("MQB_KAFKA_BROWSE_MAX_BYTES", 16 * 1024 * 1024)
# Bounds of one message search: records scanned and seconds spent.
MQB_KAFKA_SEARCH_MAX_RECORDS = envint("MQB_KAFKA_SEARCH_MAX_RECORDS", 200_000)
MQB_KAFKA_SEARCH_MAX_SECONDS = envfloat("MQB_KAFKA_SEARCH_MAX_SECONDS", 5.0)
# Idle browse consumers kept per Kafka cluster (creating one costs milliseconds).
MQB_KAFKA_BROWSE_CONSUMERS = envint("MQB_KAFKA_BROWSE_CONSUMERS", 2)
# A topic page asks at most this many consumer groups whether they read it.
MQB_KAFKA_TOPIC_GROUPS_MAX = envint("MQB_KAFKA_TOPIC_GROUPS_MAX", 1000)
# Threads of a web process that read Kafka records (browse, search, one record),
# shared fairly between users; each user runs at most MQB_USER_MAX_KAFKA_READS
# reads at once (per web process), one more answers 429.
MQB_KAFKA_READ_THREADS = envint("MQB_KAFKA_READ_THREADS", 8)
MQB_USER_MAX_KAFKA_READS = envint("MQB_USER_MAX_KAFKA_READS", 4)

# -- Dead letters (capture, inbox, requeue) --
# Bytes of a captured body kept in DeadLetter.body (decoded and shown from there).
# A longer body keeps its first MQB_DLQ_MAX_BODY bytes there, body_truncated is
# set, and every byte is kept in DeadLetterBody (same transaction), for
# download and requeue.
MQB_DLQ_MAX_BODY = envint("MQB_DLQ_MAX_BODY", 1024 * 1024)
# Largest dead letter capture stores at all (RabbitMQ's own default message size
# limit). A bigger one is left on the broker and pauses the capture of its DLQ,
# with the reason shown on the dead-letter queues page.
MQB_DLQ_MAX_MESSAGE_BYTES = envint("MQB_DLQ_MAX_MESSAGE_BYTES", 128 * 1024 * 1024)
# Capture: dead letters per batch (one transaction, then one ack or offset
# commit), the RabbitMQ prefetch window, and the longest pause before a failed
# capture is restarted.
MQB_DLQ_CAPTURE_BATCH = envint("MQB_DLQ_CAPTURE_BATCH", 500)
MQB_DLQ_CAPTURE_PREFETCH = envint("MQB_DLQ_CAPTURE_PREFETCH", 1000)
MQB_DLQ_CAPTURE_MAX_BACKOFF = envfloat("MQB_DLQ_CAPTURE_MAX_BACKOFF", 60.0)
# Fault tests only: seconds capture waits between the database commit and the
# ack/offset commit, so that a kill lands in that window more often. Keep 0.
MQB_DLQ_CAPTURE_ACK_DELAY = envfloat("MQB_DLQ_CAPTURE_ACK_DELAY", 0.0)
# Consumer group of Kafka capture; {slug} becomes the cluster's slug.
MQB_KAFKA_CAPTURE_GROUP = envstr("MQB_KAFKA_CAPTURE_GROUP", "mqboard-capture-{slug}")
# DLQ topics the name patterns do not find: "topic" (on every Kafka cluster) or
# "slug:topic" (Kafka topic names cannot contain ":").
MQB_KAFKA_DLQ_TOPICS = envlist("MQB_KAFKA_DLQ_TOPICS", "")
# The result backend of the monitored Celery apps (a redis:// URL, not the
# dashboard's own): captured Celery task messages get their task's exception
# from it. Empty: not read.
MQB_DLQ_CELERY_RESULT_BACKEND = envstr("MQB_DLQ_CELERY_RESULT_BACKEND", "")
# Queues DLQ discovery reads per RabbitMQ cluster (500 per request, 4 at a time),
# and the vhosts it reads (comma-separated; empty: every vhost).
MQB_DLQ_DISCOVERY_SCAN_LIMIT = envint("MQB_DLQ_DISCOVERY_SCAN_LIMIT", 50_000)
MQB_DLQ_DISCOVERY_VHOSTS = envlist("MQB_DLQ_DISCOVERY_VHOSTS", "")
# Seconds after a requeue in which the same message dead-lettering again marks
# the requeued row "failed again" (the verdict), and the bulk requeue's default
# rate limit (messages per second; 0: none).
MQB_DLQ_VERDICT_WINDOW = envfloat("MQB_DLQ_VERDICT_WINDOW", 3600.0)
MQB_DLQ_REQUEUE_RATE = envfloat("MQB_DLQ_REQUEUE_RATE", 0.0)
# The loop guard: a dead letter whose message was requeued and came back this many
# times (x-mqboard-requeue-count, or the came-back chain) is flagged poison at
# capture: shown with a warning, never retried automatically.
MQB_DEADLETTER_POISON_AFTER = envint("MQB_DEADLETTER_POISON_AFTER", 3)
# Discarded dead letters are kept this many days after the discard, then
# deleted by the collector's retention loop, which runs every
# MQB_DLQ_RETENTION_INTERVAL seconds and deletes MQB_DLQ_RETENTION_BATCH rows per
# transaction.
MQB_DLQ_RETENTION_DAYS = envfloat("MQB_DLQ_RETENTION_DAYS", 30.0)
MQB_DLQ_RETENTION_INTERVAL = envfloat("MQB_DLQ_RETENTION_INTERVAL", 600.0)
MQB_DLQ_RETENTION_BATCH = envint("MQB_DLQ_RETENTION_BATCH", 1000)
# Letters a bulk requeue claims, sends and settles at once: one confirm wait
# (RabbitMQ) or flush (Kafka) and one database transaction per batch. Also the
# most that can be sent twice if the worker dies mid-batch.
MQB_DLQ_REQUEUE_BATCH = envint("MQB_DLQ_REQUEUE_BATCH", 1000)
# A batch whose sends end "unknown" (connection lost, no confirm) is retried
# this many times, with backoff, before the job fails.
MQB_DLQ_REQUEUE_RETRIES = envint("MQB_DLQ_REQUEUE_RETRIES", 5)
# On PostgreSQL, how many runners (the job's and its helpers, on the jobs queue)
# work one bulk requeue at once; SQLite and a rate-limited job use one.
MQB_DLQ_REQUEUE_PARALLEL = envint("MQB_DLQ_REQUEUE_PARALLEL", 2)
# A letter "being requeued" for longer than this (and not by a running job)
# may be put back to pending by an operator: its requeue died mid-way.
MQB_DLQ_STUCK_AFTER = envfloat("MQB_DLQ_STUCK_AFTER", 120.0)
# Scheduled requeues: the worker's dispatcher (one at a time, under a Redis lease
# of MQB_DLQ_SCHEDULE_LEASE seconds) looks for due letters at least every
# MQB_DLQ_SCHEDULE_POLL seconds and sends at most MQB_DLQ_SCHEDULE_BATCH at once
# (also the most that can be sent twice if the worker dies mid-batch).
MQB_DLQ_SCHEDULE_POLL = envfloat("MQB_DLQ_SCHEDULE_POLL", 0.25)
MQB_DLQ_SCHEDULE_BATCH = envint("MQB_DLQ_SCHEDULE_BATCH", 500)
MQB_DLQ_SCHEDULE_LEASE = envfloat("MQB_DLQ_SCHEDULE_LEASE", 10.0)
# Retry policies: the longest pattern a rule may hold, and how many characters
# of an exception message (or other field) a pattern is matched against.
MQB_DLQ_POLICY_MAX_PATTERN = envint("MQB_DLQ_POLICY_MAX_PATTERN", 200)
MQB_DLQ_POLICY_MATCH_CHARS = envint("MQB_DLQ_POLICY_MATCH_CHARS", 4096)
# A dry run of a bulk requeue freezes its selection for this many seconds: the
# confirmation starts exactly those letters.
MQB_DLQ_PREVIEW_TTL = envfloat("MQB_DLQ_PREVIEW_TTL", 900.0)

# -- Live metrics (collector sampling, history, consumers, Prometheus) --
# Seconds between samples of an entity someone has open in a browser.
MQB_METRICS_WATCH_INTERVAL = envfloat("MQB_METRICS_WATCH_INTERVAL", 1.0)
# Seconds a browser's "I am watching" mark lives unless its websocket renews it.
MQB_METRICS_WATCH_TTL = envint("MQB_METRICS_WATCH_TTL", 15)
# Tiered history: raw samples for hours, per-minute for days, per-hour for days.
MQB_METRICS_RAW_HOURS = envfloat("MQB_METRICS_RAW_HOURS", 6)
MQB_METRICS_MINUTE_DAYS = envfloat("MQB_METRICS_MINUTE_DAYS", 3)
MQB_METRICS_HOUR_DAYS = envfloat("MQB_METRICS_HOUR_DAYS", 180)
# Consumers not seen for this many days are forgotten.
MQB_METRICS_CONSUMER_DAYS = envfloat("MQB_METRICS_CONSUMER_DAYS", 30)
# Management API pages (of 500 queues) in flight at once during a RabbitMQ sample.
MQB_METRICS_RABBITMQ_CONCURRENCY = envint("MQB_METRICS_RABBITMQ_CONCURRENCY", 2)
# Sample only these RabbitMQ vhosts (comma-separated; empty: every vhost) and only
# the Kafka topics matching this regular expression (empty: every topic).
MQB_METRICS_RABBITMQ_VHOSTS = envlist("MQB_METRICS_RABBITMQ_VHOSTS", "")
MQB_METRICS_KAFKA_TOPICS = envstr("MQB_METRICS_KAFKA_TOPICS", "")
# Kafka consumer groups read per sample (in group id order); the rest are counted.
MQB_METRICS_KAFKA_MAX_GROUPS = envint("MQB_METRICS_KAFKA_MAX_GROUPS", 20000)
# Kafka admin clients (connections) at most that share reading the groups: one
# more per 1,000 groups (one client answers about 1,000 group calls a second).
MQB_METRICS_KAFKA_GROUP_CLIENTS = envint("MQB_METRICS_KAFKA_GROUP_CLIENTS", 4)
# Committed offsets from following __consumer_offsets (one consumer) instead of an
# OffsetFetch per group per sample; without permission to read it, OffsetFetch.
MQB_METRICS_KAFKA_OFFSETS_LOG = envbool("MQB_METRICS_KAFKA_OFFSETS_LOG", True)
# Partitions whose record timestamp (for lag in seconds) may be read per sample,
# and seconds those reads may take; the rest fall back to lag / produce rate.
MQB_METRICS_LAG_PROBES = envint("MQB_METRICS_LAG_PROBES", 500)
MQB_METRICS_LAG_PROBE_SECONDS = envfloat("MQB_METRICS_LAG_PROBE_SECONDS", 2.0)
# A queue or consumer group without a consumer for longer than this (seconds)
# is highlighted on the consumers page.
MQB_METRICS_NO_CONSUMER_SECONDS = envint("MQB_METRICS_NO_CONSUMER_SECONDS", 300)
# Bearer token of the Prometheus endpoint /metrics; unset means /metrics answers 404.
MQB_METRICS_TOKEN = envsecret("MQB_METRICS_TOKEN")
# The Redis URL of the channel layer and the metrics keys (watchers, latest
# samples) is REDIS_URL above: the fault tests point it at a private Redis.
# Celery workers on brokers the sampling cannot see (Redis) are asked what they
# consume (Celery's active_queues broadcast) by the collector's "celery" loop:
# comma-separated broker URLs ("none": off; default: CELERY_BROKER_URL when it is
# Redis), every MQB_METRICS_CELERY_INTERVAL seconds, waiting
# MQB_METRICS_CELERY_TIMEOUT seconds for answers, on the workers' control exchange.
MQB_METRICS_CELERY_BROKERS = envlist(
    "MQB_METRICS_CELERY_BROKERS",
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
MQB_METRICS_CELERY_INTERVAL = envfloat("MQB_METRICS_CELERY_INTERVAL", 15.0)
MQB_METRICS_CELERY_TIMEOUT = envfloat("MQB_METRICS_CELERY_TIMEOUT", 1.0)
MQB_METRICS_CELERY_CONTROL_EXCHANGE = envstr("MQB_METRICS_CELERY_CONTROL_EXCHANGE", "celery")
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "mqboard-metrics-downsample": {"task": "dashboard.metrics.downsample", "schedule": 60.0},
    "mqboard-metrics-retention": {"task": "dashboard.metrics.retention", "schedule": 600.0},
    "mqboard-jobs-revive": {"task": "dashboard.jobs.revive", "schedule": 60.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("MQB_LOG_LEVEL", "INFO")},
    "loggers": {
        "aiormq": {"level": "WARNING"},
        "aio_pika": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# -- Live tail --
# Messages per second a viewer of a live tail is sent at most (the rest are
# counted as skipped); a tail also reads no faster than this from the broker.
MQB_TAIL_RATE = envint("MQB_TAIL_RATE", 20)
# The RabbitMQ tail's private buffer queue holds at most this many messages and
# bytes between its reads (drop-head); overflow makes the skipped count a lower bound.
MQB_TAIL_BUFFER = envint("MQB_TAIL_BUFFER", 10_000)
MQB_TAIL_BUFFER_BYTES = envint("MQB_TAIL_BUFFER_BYTES", 16 * 1024 * 1024)
# Characters of a message body (or key) a tail shows; bodies are decoded from
# at most their first 64 KiB.
MQB_TAIL_PREVIEW = envint("MQB_TAIL_PREVIEW", 1024)
# Live tails one user watches at once, and distinct tails a web process runs at
# once (a Kafka tail holds a consumer and its threads); more are refused.
MQB_USER_MAX_TAILS = envint("MQB_USER_MAX_TAILS", 4)
MQB_TAIL_MAX_RUNNING = envint("MQB_TAIL_MAX_RUNNING", 50)

# -- Cluster health: pages read the collector's last check, never the brokers --
# A stored check older than this many seconds is shown as stale (default: three intervals).
MQB_HEALTH_STALE_AFTER = envfloat("MQB_HEALTH_STALE_AFTER", 3 * MQB_SAMPLE_INTERVAL)
# "Check now" reuses any check (by the collector or anyone) younger than this many seconds.
MQB_HEALTH_CHECK_GAP = envfloat("MQB_HEALTH_CHECK_GAP", 2.0)
# Seconds a web process answers the overview and /api/clusters/health from the stored
# checks it read last (0: read them for every request); its own check now drops them.
MQB_HEALTH_REUSE_SECONDS = envfloat("MQB_HEALTH_REUSE_SECONDS", 1.0)
# A web process reuses its dead-letter counts (inbox groups and rows, the overview's
# pending letters) while the letters table's index stamp is unchanged, at most this
# many seconds (dashboard.core.letter_counts; 0: count on every page view).
MQB_LETTER_COUNTS_MAX_AGE = envfloat("MQB_LETTER_COUNTS_MAX_AGE", 60.0)

# -- Alerts: rules evaluated by the collector after each sample, sent through an outbox --
# A sender (a thread of the collector) looks for due notifications at least every
# MQB_ALERTS_SEND_POLL seconds, waits MQB_ALERTS_SEND_TIMEOUT seconds for a receiver,
# and holds a notification it is sending for MQB_ALERTS_SEND_LEASE seconds (a sender
# killed mid-send leaves it to the next one after that). A failed send is tried again
# after MQB_ALERTS_RETRY_BASE seconds, doubling up to MQB_ALERTS_RETRY_CAP, and given
# up after MQB_ALERTS_MAX_ATTEMPTS attempts.
MQB_ALERTS_SEND_POLL = envfloat("MQB_ALERTS_SEND_POLL", 1.0)
MQB_ALERTS_SEND_TIMEOUT = envfloat("MQB_ALERTS_SEND_TIMEOUT", 10.0)
MQB_ALERTS_SEND_LEASE = envfloat("MQB_ALERTS_SEND_LEASE", 30.0)
MQB_ALERTS_RETRY_BASE = envfloat("MQB_ALERTS_RETRY_BASE", 2.0)
MQB_ALERTS_RETRY_CAP = envfloat("MQB_ALERTS_RETRY_CAP", 600.0)
MQB_ALERTS_MAX_ATTEMPTS = envint("MQB_ALERTS_MAX_ATTEMPTS", 50)
# Notifications of one rule on one cluster to one channel go as one message: the first
# after MQB_ALERTS_GROUP_WAIT seconds (alerts firing together join it), later changes of
# the group at most every MQB_ALERTS_GROUP_INTERVAL seconds. The wait defaults to 0:
# the alerts one evaluation starts are written together and already go as one message,
# and a wait would delay every first notification by that much (a wait of a few sample
# intervals also gathers alerts that start in the next samples, like Alertmanager's).
MQB_ALERTS_GROUP_WAIT = envfloat("MQB_ALERTS_GROUP_WAIT", 0.0)
MQB_ALERTS_GROUP_INTERVAL = envfloat("MQB_ALERTS_GROUP_INTERVAL", 60.0)
