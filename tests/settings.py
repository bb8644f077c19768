"""Test settings: the real services, isolated per test run.

Every run gets a run id (inherited by the processes tests start, such as the
Celery worker and Daphne), which names its Redis channel prefix and its Celery
queue, so two runs on one machine never see each other's messages. Under
pytest-xdist each worker is a run of its own: it derives its id from the
controller's (``<id>-gw0``, ``<id>-gw1``), so workers share nothing either.
"""

from __future__ import annotations

import os
import tempfile
import uuid

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

from dashboard.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# Tests read task results back; the app itself runs without a result backend.
CELERY_RESULT_BACKEND = REDIS_URL  # noqa: F405

# A file, not SQLite's shared-cache memory database: with shared cache, a
# capture thread writing while another connection reads fails with "database
# table is locked"; a file in WAL mode (dashboard.settings) lets them overlap.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": os.path.join(tempfile.gettempdir(), f"mqb-test-{RUN_ID}.sqlite3")
}

# Alert notifications are sent as soon as they are due; grouping tests set their own waits.
MQB_ALERTS_GROUP_WAIT = float(os.environ.get("MQB_ALERTS_GROUP_WAIT", "0"))
MQB_ALERTS_GROUP_INTERVAL = float(os.environ.get("MQB_ALERTS_GROUP_INTERVAL", "0"))
