"""Exceptions of failed Celery tasks, read from the monitored apps' result backend.

A Celery task message carries its task name, id and retries, but not why it
failed; the worker stores that in its result backend. When
``MQB_DLQ_CELERY_RESULT_BACKEND`` names a Redis result backend, captured task
messages get ``exception_class`` and ``exception_message`` from
``celery-task-meta-<id>`` (one MGET per batch; JSON results only: a pickled
result is never unpickled). Any failure to read it leaves the rows as they
were: capture never waits on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import RedisError

from brokers.base.deadletters import CapturedLetter
from brokers.decode.metadata import amqp_failure_info
from brokers.decode.values import from_json

log = logging.getLogger(__name__)

CELERY_RESULT_KEY = "celery-task-meta-"  # Celery's Redis result backend key prefix


@cache
def _result_backend(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _celery_results(task_ids: list[str]) -> dict[str, Mapping[str, Any]]:
    """Stored results of these tasks, from MQB_DLQ_CELERY_RESULT_BACKEND (JSON only)."""
    client = _result_backend(settings.MQB_DLQ_CELERY_RESULT_BACKEND)
    try:
        raw = client.mget([CELERY_RESULT_KEY + task_id for task_id in task_ids])
    except RedisError as exc:
        log.warning("cannot read Celery results: %s", exc)
        return {}
    found: dict[str, Mapping[str, Any]] = {}
    for task_id, value in zip(task_ids, raw, strict=True):
        try:
            result = json.loads(value) if value else None
        except ValueError:
            result = None  # pickled or another serializer: never unpickled
        if isinstance(result, dict):
            found[task_id] = result
    return found


def task_result(task_id: str) -> Mapping[str, Any] | None:
    """The stored result of one task (read-only); None when no backend is set or it has none."""
    url = settings.MQB_DLQ_CELERY_RESULT_BACKEND
    if not url or not task_id or not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return _celery_results([task_id]).get(task_id)


def with_celery_exceptions(letters: Sequence[CapturedLetter]) -> Sequence[CapturedLetter]:
    """Add the exception of failed Celery tasks, when a result backend is configured."""
    url = settings.MQB_DLQ_CELERY_RESULT_BACKEND
    if not url:
        return letters
    if not url.startswith(("redis://", "rediss://", "unix://")):
        log.warning("MQB_DLQ_CELERY_RESULT_BACKEND: only Redis result backends are read")
        return letters
    wanted = [x.info.task_id for x in letters if x.info.task_id and not x.info.exception_class]
    results = _celery_results(wanted) if wanted else {}
    if not results:
        return letters
    improved = []
    for letter in letters:
        result = results.get(letter.info.task_id)
        if result is not None:
            headers = from_json(letter.headers)
            info = amqp_failure_info(
                headers if isinstance(headers, dict) else {},
                {"message_id": letter.properties.get("message_id")},
                dlq=letter.dlq,
                celery_result=result,
            )
            letter = replace(letter, info=info)
        improved.append(letter)
    return improved
