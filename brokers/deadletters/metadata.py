"""Normalised failure metadata of one dead letter, from whatever its headers say.

:func:`amqp_failure_info` reads a RabbitMQ message: ``x-death`` (a list of
tables, newest first, one per queue and reason, with ``count``, ``time``,
``exchange`` and ``routing-keys``), falling back to ``x-first-death-*`` /
``x-last-death-*`` when ``x-death`` is missing or garbled, and Celery's
protocol-2 headers (``task``, ``id``, ``retries``). The exception of a Celery
task is not in the message; pass the task's stored result as
``celery_result`` when a result backend has it.

:func:`kafka_failure_info` reads a Kafka record's headers: Spring's
``kafka_dlt-*``, Kafka Connect's ``__connect.errors.*`` and plain
``x-original-*`` (see :mod:`brokers.deadletters.conventions`).

A dead letter with none of these still gets a :class:`FailureInfo`, with the
``unknown`` convention and the "unknown origin" label. Everything here is pure
and never raises on any input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from brokers.decode import decode_x_death
from brokers.decode.headers import header_pairs
from brokers.decode.render import text_of

from . import conventions
from .fingerprint import fingerprint

UNKNOWN = "unknown"
MAX_TEXT = 10_000  # characters kept of an exception message
_MESSAGE_ID_HEADERS = ("message-id", "message_id", "messageid", "x-message-id")


@dataclass(frozen=True)
class FailureInfo:
    """Where a dead letter came from and why it failed. Empty strings mean "not known".

    ``conventions`` names the headers it was read from: ``x-death``,
    ``x-first-death``, ``celery``, ``spring``, ``connect``, ``x-original`` or
    just ``unknown``. ``attempts`` is at least 1.
    """

    kind: str  # "amqp" or "kafka"
    conventions: tuple[str, ...] = (UNKNOWN,)
    origin_exchange: str | None = None
    origin_routing_keys: tuple[str, ...] = ()
    origin_queue: str | None = None
    origin_topic: str | None = None
    origin_partition: int | None = None
    origin_offset: int | None = None
    reason: str = ""
    exception_class: str = ""
    exception_message: str = ""
    attempts: int = 1
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None
    message_id: str = ""
    task_name: str = ""
    task_id: str = ""
    notes: tuple[str, ...] = ()
    fingerprint: str = ""

    @property
    def origin_known(self) -> bool:
        return bool(self.origin_queue or self.origin_exchange is not None or self.origin_topic)

    @property
    def origin_routing_key(self) -> str:
        return self.origin_routing_keys[0] if self.origin_routing_keys else ""

    @property
    def origin_label(self) -> str:
        """A short human description: ``queue 'orders' (exchange 'events', key 'a.b')``."""
        if self.origin_topic:
            where = f"topic {self.origin_topic!r}"
            if self.origin_partition is not None:
                where += f" partition {self.origin_partition}"
            if self.origin_offset is not None:
                where += f" offset {self.origin_offset}"
            return where
        if self.origin_queue or self.origin_exchange is not None:
            parts = []
            if self.origin_exchange is not None:
                parts.append(f"exchange {self.origin_exchange or '(default)'!r}")
            if self.origin_routing_keys:
                parts.append(f"key {', '.join(self.origin_routing_keys)!r}")
            queue = f"queue {self.origin_queue!r}" if self.origin_queue else "unknown queue"
            return f"{queue} ({', '.join(parts)})" if parts else queue
        return "unknown origin"

    def group_origin(self, dlq: str) -> str:
        """What names the origin in the fingerprint (no per-message keys or offsets)."""
        if self.origin_topic:
            return f"topic:{self.origin_topic}"
        if self.origin_known:
            return f"queue:{self.origin_queue or ''}|exchange:{self.origin_exchange or ''}"
        return f"unknown:dlq:{dlq}"


def _with_fingerprint(info: FailureInfo, dlq: str) -> FailureInfo:
    return replace(
        info,
        exception_message=info.exception_message[:MAX_TEXT],
        attempts=max(1, info.attempts),
        fingerprint=fingerprint(
            origin=f"{info.kind}:{info.group_origin(dlq)}",
            reason=info.reason,
            exception_class=info.exception_class,
            exception_message=info.exception_message,
            task_name=info.task_name,
        ),
    )


# -- RabbitMQ --------------------------------------------------------------------


def amqp_failure_info(
    headers: Mapping[str, object] | None,
    properties: Mapping[str, object] | None = None,
    *,
    dlq: str = "",
    celery_result: Mapping[str, object] | None = None,
) -> FailureInfo:
    """Failure metadata of a RabbitMQ message from its headers and properties."""
    found: dict[str, object] = {}
    for key, value in header_pairs(headers):
        found.setdefault(key.lower(), value)
    notes: list[str] = []
    names: list[str] = []
    fields: dict[str, object] = {}

    raw = found.get("x-death")
    usable = isinstance(raw, list | tuple) and any(isinstance(e, Mapping) for e in raw)
    if raw is not None and not usable:
        notes.append("the x-death header is not a list of tables; it was ignored")
    events = decode_x_death(headers)
    if events:
        names.append("x-death" if usable else "x-first-death")
        timed = [e for e in events if e.time is not None]
        latest = timed[-1] if timed else events[-1]
        if usable and not timed:
            notes.append("x-death entries carry no time")
        fields.update(
            origin_queue=latest.queue,
            origin_exchange=latest.exchange,
            origin_routing_keys=latest.routing_keys,
            reason=latest.reason or "",
            attempts=latest.count or 1,
            first_failed_at=timed[0].time if timed else None,
            last_failed_at=timed[-1].time if timed else None,
        )
        if latest.queue is None:
            notes.append("the dead-letter history does not name the queue it failed in")
    elif usable:
        notes.append("the x-death entries hold nothing readable")

    task, task_id = text_of(found.get("task")), text_of(found.get("id"))
    if task and task_id:
        names.append("celery")
        fields.update(task_name=task, task_id=task_id)
        retries = found.get("retries")
        if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0:
            attempts = fields.get("attempts")
            fields["attempts"] = max(attempts if isinstance(attempts, int) else 1, retries + 1)
        if celery_result is not None:
            fields.update(_celery_exception(celery_result))

    props = properties or {}
    message_id = text_of(props.get("message_id")) or ""
    if not message_id:
        message_id = next(
            (text_of(found.get(k)) or "" for k in _MESSAGE_ID_HEADERS if found.get(k)), ""
        )
    info = FailureInfo(
        kind="amqp",
        conventions=tuple(names) or (UNKNOWN,),
        message_id=message_id or str(fields.get("task_id") or ""),
        notes=tuple(notes),
        **fields,  # type: ignore[arg-type]
    )
    return _with_fingerprint(info, dlq)


def _celery_exception(result: Mapping[str, object]) -> dict[str, str]:
    """The exception of a failed task as Celery's result backends store it (JSON)."""
    if result.get("status") not in ("FAILURE", "RETRY"):
        return {}
    inner = result.get("result")
    if not isinstance(inner, Mapping):
        return {}
    exc_type = text_of(inner.get("exc_type")) or ""
    module = text_of(inner.get("exc_module")) or ""
    if module and module != "builtins" and exc_type:
        exc_type = f"{module}.{exc_type}"
    message = inner.get("exc_message")
    if isinstance(message, list | tuple):
        text = " ".join(str(part) for part in message)
    else:
        text = str(message) if message is not None else ""
    return {"exception_class": exc_type, "exception_message": text}


# -- Kafka -----------------------------------------------------------------------


def kafka_failure_info(
    headers: Iterable[tuple[str, bytes | None]] | None,
    *,
    dlq: str = "",
    timestamp: datetime | None = None,
) -> FailureInfo:
    """Failure metadata of a Kafka dead-letter record from its headers.

    ``timestamp`` is the record's own timestamp: when it was written to the
    DLQ topic, which is when it failed (the conventions carry the original
    record's time, not the failure's).
    """
    raw: conventions.Raw = {}
    for key, value in header_pairs(headers):
        if value is None or isinstance(value, bytes | bytearray):
            raw.setdefault(key.lower(), bytes(value) if value is not None else None)
        elif isinstance(value, str):
            raw.setdefault(key.lower(), value.encode("utf-8"))
    found = [f for f in (reader(raw) for reader in conventions.READERS) if f is not None]
    notes = [note for f in found for note in f.notes]
    message_id = next(
        (conventions.text(raw[k]) or "" for k in _MESSAGE_ID_HEADERS if raw.get(k)), ""
    )
    if not found:
        info = FailureInfo(
            kind="kafka",
            message_id=message_id,
            first_failed_at=timestamp,
            last_failed_at=timestamp,
        )
        return _with_fingerprint(info, dlq)
    main = found[0]
    if len(found) > 1:
        notes.append(
            f"headers of several conventions ({', '.join(f.convention for f in found)});"
            f" {main.convention} was used"
        )
    info = FailureInfo(
        kind="kafka",
        conventions=tuple(f.convention for f in found),
        origin_topic=main.topic,
        origin_partition=main.partition,
        origin_offset=main.offset,
        reason=main.reason,
        exception_class=main.exception_class,
        exception_message=main.exception_message,
        attempts=main.attempts or 1,
        first_failed_at=timestamp,
        last_failed_at=timestamp,
        message_id=message_id,
        notes=tuple(notes),
    )
    return _with_fingerprint(info, dlq)
