"""Test settings: the real services, isolated per test run.

Every run gets a run id (inherited by the processes tests start, such as the
Celery worker and Daphne), which names its Redis channel prefix and its Celery
queue, so two runs on one machine never see each other's messages. Under
pytest-xdist each worker is a run of its own: it derives its id from the
controller's (``<id>-gw0``, ``<id>-gw1``), so workers share nothing either.

``MQB_TEST_DB`` chooses where the test database lives: ``sqlite`` (default) a
file per run in the temp dir; ``postgres`` a database per run on the cluster of
``ops/postgres.sh`` (its URL from ``MQB_TEST_DATABASE_URL``, else the file
``ops/postgres.sh up`` writes in the state dir), named after the run id. An
explicit ``DATABASE_URL`` always wins: processes that tests start get the
database they should use that way.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER and os.environ.get("MQB_TEST_RUN_WORKER") != _WORKER:
    # First import in an xdist worker: the controller's ids are in the environment
    # it inherited; replace the ones derived from them with this worker's own.
    _base = os.environ.get("MQB_TEST_RUN_ID") or uuid.uuid4().hex[:10]
    for _name in ("MQB_CHANNEL_PREFIX", "MQB_CELERY_QUEUE"):
        if os.environ.get(_name) == f"mqb-test-{_base}":
            del os.environ[_name]
    os.environ["MQB_TEST_RUN_ID"] = f"{_base}-{_WORKER}"
    os.environ["MQB_TEST_RUN_WORKER"] = _WORKER

RUN_ID = os.environ.setdefault("MQB_TEST_RUN_ID", uuid.uuid4().hex[:10])
os.environ.setdefault("MQB_CHANNEL_PREFIX", f"mqb-test-{RUN_ID}")
os.environ.setdefault("MQB_CELERY_QUEUE", f"mqb-test-{RUN_ID}")

import dashboard.settings as _web_settings  # noqa: E402
from dashboard.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# Answers the API sends as built (dashboard.core.api.built_answer) are checked
# against their response schema in every test, and in every process tests start.
MQB_API_CHECK_ANSWERS = True

# Tests read task results back; the app itself runs without a result backend.
CELERY_RESULT_BACKEND = REDIS_URL  # noqa: F405

TEST_DB = os.environ.get("MQB_TEST_DB", "sqlite")
if TEST_DB not in ("sqlite", "postgres"):
    raise ImproperlyConfigured(f"MQB_TEST_DB must be sqlite or postgres, not {TEST_DB!r}")


def _postgres_url() -> str:
    url = os.environ.get("MQB_TEST_DATABASE_URL", "")
    if url:
        return url
    path = STATE_DIR / "postgres.url"  # noqa: F405
    if not path.exists():
        raise ImproperlyConfigured(
            f"MQB_TEST_DB=postgres: no {path}; run ops/postgres.sh up (make test does)"
        )
    return path.read_text().strip()


if TEST_DB == "postgres" and not os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(_postgres_url())}
    # Connections kept as a web process keeps them (dashboard.settings).
    DATABASES["default"]["CONN_MAX_AGE"] = _web_settings.DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # pytest-django appends the xdist worker (``_gw0``) to this name as well.
    DATABASES["default"]["TEST"] = {"NAME": "mqb_test_" + re.sub(r"\W", "_", RUN_ID)}
else:
    # A file, not SQLite's shared-cache memory database: with shared cache, a
    # capture thread writing while another connection reads fails with "database
    # table is locked"; a file in WAL mode (dashboard.settings) lets them overlap.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"mqb-test-{RUN_ID}.sqlite3")
    }

# Alert notifications are sent as soon as they are due; grouping tests set their own waits.
MQB_ALERTS_GROUP_WAIT = float(os.environ.get("MQB_ALERTS_GROUP_WAIT", "0"))
MQB_ALERTS_GROUP_INTERVAL = float(os.environ.get("MQB_ALERTS_GROUP_INTERVAL", "0"))
# Each test sees the cluster rows it wrote (rolled back between tests); reuse tests set their own.
MQB_HEALTH_REUSE_SECONDS = float(os.environ.get("MQB_HEALTH_REUSE_SECONDS", "0"))
