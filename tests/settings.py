"""Test settings: the real services, isolated per test run.

Every run gets a run id (inherited by the processes tests start, such as the
Celery worker and Daphne), which names its Redis channel prefix and its Celery
queue, so two runs on one machine never see each other's messages.
"""

from __future__ import annotations

import os
import tempfile
import uuid

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
