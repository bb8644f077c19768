"""Recognising Celery task messages (protocol 1 and 2) in decoded bodies.

Also: why a task failed (:func:`failure_from_headers`, :func:`failure_from_result`,
never unpickling anything) and the message of a task sent again under a new
id (:func:`with_new_id`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgpack

from .model import CeleryTask, TaskFailure
from .render import as_datetime, text_of

MAX_TRACEBACK = 65536  # characters of a traceback kept for display

# Header names under which producers and dead-letter relays put a task's exception.
_EXCEPTION_HEADERS = ("exception", "exc_type", "x-exception-class", "x-exception-fqcn")
_MESSAGE_HEADERS = ("exc_message", "exception_message", "x-exception-message")
_TRACEBACK_HEADERS = ("traceback", "exc_traceback", "x-exception-stacktrace", "x-exception-trace")


def is_task_headers(headers: Mapping[str, object]) -> bool:
    """Protocol 2 keeps the task name and id in the AMQP headers."""
    return bool(text_of(headers.get("task"))) and bool(text_of(headers.get("id")))


def task_v2(headers: Mapping[str, object], body: object, *, parsed: bool) -> CeleryTask | None:
    """A protocol-2 task; ``None`` when a parsed body is not ``[args, kwargs, embed]``.

    With ``parsed=False`` (pickle, YAML, too large) the task is still named from
    its headers, with ``args`` and ``kwargs`` unknown.
    """
    args: tuple[object, ...] | None = None
    kwargs: Mapping[str, object] | None = None
    if parsed:
        if not (
            isinstance(body, list)
            and len(body) == 3
            and isinstance(body[0], list)
            and isinstance(body[1], dict)
            and (body[2] is None or isinstance(body[2], dict))
        ):
            return None
        args, kwargs = tuple(body[0]), body[1]
    return CeleryTask(
        name=text_of(headers.get("task")) or "",
        id=text_of(headers.get("id")) or "",
        args=args,
        kwargs=kwargs,
        retries=_int(headers.get("retries")),
        eta=as_datetime(headers.get("eta")),
        expires=as_datetime(headers.get("expires")),
        root_id=text_of(headers.get("root_id")),
        parent_id=text_of(headers.get("parent_id")),
        group=text_of(headers.get("group")),
        origin=text_of(headers.get("origin")),
        protocol=2,
        argsrepr=text_of(headers.get("argsrepr")),
        kwargsrepr=text_of(headers.get("kwargsrepr")),
    )


def task_v1(body: object) -> CeleryTask | None:
    """A protocol-1 task: everything is in the body dict."""
    if not isinstance(body, dict):
        return None
    name, task_id = body.get("task"), body.get("id")
    args, kwargs = body.get("args"), body.get("kwargs")
    if not (
        isinstance(name, str)
        and isinstance(task_id, str)
        and isinstance(args, list)
        and isinstance(kwargs, dict)
    ):
        return None
    return CeleryTask(
        name=name,
        id=task_id,
        args=tuple(args),
        kwargs=kwargs,
        retries=_int(body.get("retries")),
        eta=as_datetime(body.get("eta")),
        expires=as_datetime(body.get("expires")),
        group=text_of(body.get("taskset")) or text_of(body.get("group")),
        protocol=1,
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def failure_from_headers(headers: Mapping[str, object]) -> TaskFailure | None:
    """The exception and traceback a message's headers carry, if any (keys case-insensitive)."""
    found = {str(k).lower(): v for k, v in headers.items()}

    def first(names: tuple[str, ...]) -> str:
        return next((text for n in names if (text := text_of(found.get(n)))), "")

    exception, message = first(_EXCEPTION_HEADERS), first(_MESSAGE_HEADERS)
    traceback = first(_TRACEBACK_HEADERS)[:MAX_TRACEBACK]
    if not (exception or message or traceback):
        return None
    return TaskFailure(exception, message, traceback, "", "headers")


def failure_from_result(result: Mapping[str, object]) -> TaskFailure | None:
    """A task's state, exception and traceback as a JSON result backend stores them."""
    status = text_of(result.get("status")) or ""
    if not status:
        return None
    inner = result.get("result")
    exception = message = ""
    if status in ("FAILURE", "RETRY") and isinstance(inner, Mapping):
        exception = text_of(inner.get("exc_type")) or ""
        module = text_of(inner.get("exc_module")) or ""
        if module and module != "builtins" and exception:
            exception = f"{module}.{exception}"
        raw = inner.get("exc_message")
        if isinstance(raw, list | tuple):
            message = " ".join(str(part) for part in raw)
        elif raw is not None:
            message = str(raw)
    traceback = (text_of(result.get("traceback")) or "")[:MAX_TRACEBACK]
    return TaskFailure(exception, message, traceback, status, "result backend")


class NotATask(ValueError):
    """The message cannot be given a new task id (not a task, or a body we do not rewrite)."""


def with_new_id(
    task: CeleryTask,
    headers: Mapping[str, Any],
    body: bytes,
    content_type: str,
    new_id: str,
) -> tuple[dict[str, Any], bytes]:
    """Headers and body of the same task under ``new_id``, as Celery would send it.

    Protocol 2: the ``id`` header changes; ``root_id``, ``parent_id`` and the
    body stay (the body is never parsed, so a pickled one is never unpickled).
    Protocol 1: the body's ``id`` changes (JSON or MessagePack bodies only).
    The caller sets the ``correlation_id`` property to ``new_id``, as Celery does.
    """
    new_headers = dict(headers)
    if task.protocol == 2:
        new_headers["id"] = new_id
        return new_headers, body
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        if media in ("application/json", "text/json"):
            value = json.loads(body)
            if isinstance(value, dict):
                value["id"] = new_id
                return new_headers, json.dumps(value).encode()
        elif media in ("application/msgpack", "application/x-msgpack"):
            value = msgpack.unpackb(body, raw=False, strict_map_key=False)
            if isinstance(value, dict):
                value["id"] = new_id
                return new_headers, msgpack.packb(value, use_bin_type=True)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        raise NotATask(f"the task message does not parse: {exc}") from None
    raise NotATask(f"a protocol-1 task in {media or 'an unknown format'} keeps its id")
