"""Dead-lettered Celery tasks: the letter page's task section, and *Retry task*.

The task (name, id, args, kwargs, retries, ETA, parent and root ids) is
decoded by ``brokers.decode``; a pickled body is never unpickled. Why it
failed comes from the message's headers when they carry it, and from the
result backend named by ``MQB_DLQ_CELERY_RESULT_BACKEND`` (``celery-task-meta-<id>``,
read-only, JSON results only) when one is configured.

*Retry task* is a requeue (the same claim, RabbitMQ sender, confirms and
audit as ``requeue``) of the message to the task's queue, keeping the task id
or under a new one: a new id rewrites the ``id`` header (protocol 2; the body
and ``root_id`` stay) or the body's ``id`` (protocol 1), and the
``correlation_id`` property follows the id, as Celery sets it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest

from brokers.base.deadletters import Edit
from brokers.decode import CeleryTask, Decoded, TaskFailure, decode_body
from brokers.decode.celery_task import (
    NotATask,
    failure_from_headers,
    failure_from_result,
    with_new_id,
)
from brokers.decode.render import render
from brokers.decode.values import from_json
from dashboard.core import display
from dashboard.core.params import InvalidInput
from dashboard.deadletters.celery_results import task_result
from dashboard.deadletters.common import User
from dashboard.deadletters.requeue import RequeueResult, do_requeue_dead_letter, full_body
from dashboard.models import DeadLetter

RETRY_ACTION = "deadletter.task.requeue"
ARGS_LIMIT = 16384  # characters of args / kwargs shown

# A stored result's Celery state, as a badge ("task_failure" -> "Failure", danger).
for _state, _tone in {
    "SUCCESS": display.OK,
    "FAILURE": display.DANGER,
    "RETRY": display.WARN,
    "PENDING": display.MUTED,
    "STARTED": display.INFO,
    "REVOKED": display.MUTED,
    "REJECTED": display.DANGER,
}.items():
    display.register(f"task_{_state.lower()}", _state.capitalize(), _tone)


@dataclass(frozen=True)
class TaskSection:
    """What the letter page shows of a Celery task.

    ``failure``: the exception the headers carry; ``stored``: the task's
    result in the result backend (its state may have changed since, e.g. to
    SUCCESS after a retry); ``backend``: whether a result backend is configured.
    """

    task: CeleryTask
    failure: TaskFailure | None
    stored: TaskFailure | None
    backend: bool
    args_text: str | None = None
    kwargs_text: str | None = None

    @property
    def state(self) -> str:
        """The stored result's state as a badge code (``task_success``), or ""."""
        return f"task_{self.stored.status.lower()}" if self.stored else ""


def _headers(letter: DeadLetter) -> dict[str, Any] | None:
    raw = from_json(letter.headers) if isinstance(letter.headers, dict) else None
    return raw if isinstance(raw, dict) else None


def task_section(letter: DeadLetter, body: Decoded) -> TaskSection | None:
    """The task section of a letter whose body decoded as a Celery task, else None."""
    task = body.celery
    if task is None:
        return None
    headers = _headers(letter)
    failure = failure_from_headers(headers) if headers is not None else None
    backend = bool(settings.MQB_DLQ_CELERY_RESULT_BACKEND)
    result = task_result(task.id) if backend else None
    stored = failure_from_result(result) if result is not None else None
    args = None if task.args is None else render(list(task.args), ARGS_LIMIT)[0]
    kwargs = None if task.kwargs is None else render(dict(task.kwargs), ARGS_LIMIT)[0]
    return TaskSection(task, failure, stored, backend, args, kwargs)


def _retry_plan(letter_id: int, new_id: bool) -> tuple[CeleryTask, str, Edit | None]:
    """The task, the id it is sent with, and the edit that gives it that id."""
    letter = DeadLetter.objects.select_related("full_body").filter(pk=letter_id).first()
    if letter is None:
        raise DeadLetter.DoesNotExist(f"no dead letter #{letter_id}")
    headers = _headers(letter)
    if headers is None:
        raise InvalidInput("Retry task needs a message with AMQP headers")
    props = letter.properties if isinstance(letter.properties, dict) else {}
    content_type = str(props.get("content_type") or "")
    body = full_body(letter)
    decoded = decode_body(
        body,
        content_type=content_type,
        content_encoding=str(props.get("content_encoding") or ""),
        headers=headers,
        limit=0,
    )
    task = decoded.celery
    if task is None or not task.id:
        raise InvalidInput(f"dead letter #{letter_id} is not a Celery task message")
    if not new_id:
        return task, task.id, None
    fresh = str(uuid.uuid4())
    try:
        # The stored (JSON-safe) headers: the sender turns them back into AMQP values.
        stored_headers = dict(letter.headers) if isinstance(letter.headers, dict) else {}
        new_headers, new_body = with_new_id(task, stored_headers, body, content_type, fresh)
    except NotATask as exc:
        raise InvalidInput(str(exc)) from None
    edit = Edit(
        body=None if new_body == body else new_body,
        headers=new_headers,
        properties={"correlation_id": fresh},
    )
    return task, fresh, edit


async def do_retry_task(
    letter_id: int, *, new_id: bool, user: User, request: HttpRequest | None = None
) -> tuple[RequeueResult, str]:
    """Requeue a dead-lettered task to its queue (operator); returns the result and task id."""
    task, task_id, edit = await sync_to_async(_retry_plan)(letter_id, new_id)
    audit: dict[str, Any] = {"task": task.name, "task_id": task_id, "new_task_id": new_id}
    if new_id:
        audit["previous_task_id"] = task.id
    result = await do_requeue_dead_letter(
        letter_id, user=user, request=request, edit=edit, action=RETRY_ACTION, audit=audit
    )
    return result, task_id
