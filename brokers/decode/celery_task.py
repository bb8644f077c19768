"""Recognising Celery task messages (protocol 1 and 2) in decoded bodies."""

from __future__ import annotations

from collections.abc import Mapping

from .model import CeleryTask
from .render import as_datetime, text_of


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
