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
``x-original-*`` (see :mod:`brokers.decode.conventions`). A record that
failed again after a requeue carries a fresh set of these headers after the
old ones (Connect and Spring append): a repeated key is read as Kafka's own
``Headers.lastHeader`` reads it, the newest wins, and the older values become
``history`` (earlier failures, newest first).

A dead letter with none of these still gets a :class:`FailureInfo`, with the
``unknown`` convention and the "unknown origin" label. Everything here is pure
and never raises on any input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brokers.decode import decode_x_death
from brokers.decode.headers import header_pairs
from brokers.decode.render import text_of

from . import conventions
from .fingerprint import fingerprint

UNKNOWN = "unknown"
REQUEUE_COUNT_HEADER = "x-mqboard-requeue-count"  # as brokers.base.deadletters sets it
MAX_TEXT = 10_000  # characters kept of an exception message
_MESSAGE_ID_HEADERS = ("message-id", "message_id", "messageid", "x-message-id")
MAX_HISTORY = 20  # earlier failures kept of one record (its headers are untrusted)
HISTORY_TEXT = 2_000  # characters kept of an earlier failure's exception message


@dataclass(frozen=True)
class EarlierFailure:
    """A failure a Kafka record's older, repeated convention headers tell of."""

    convention: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    reason: str = ""
    component: str = ""
    exception_class: str = ""
    exception_message: str = ""
    fingerprint: str = ""


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
    # Kafka Connect's class that failed (converter, transformation, connector).
    component: str = ""
    history: tuple[EarlierFailure, ...] = ()
    # Spring: the wrapper (ListenerExecutionFailedException) whose cause the letter reads.
    wrapper_class: str = ""
    wrapper_message: str = ""
    # How many times the dashboard requeued this message before (``x-mqboard-requeue-count``).
    requeue_count: int = 0

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
        return _group_origin(self.origin_topic, self.origin_queue, self.origin_exchange, dlq)


def _group_origin(topic: str | None, queue: str | None, exchange: str | None, dlq: str) -> str:
    if topic:
        return f"topic:{topic}"
    if queue or exchange is not None:  # FailureInfo.origin_known
        return f"queue:{queue or ''}|exchange:{exchange or ''}"
    return f"unknown:dlq:{dlq}"


def read_requeue_count(value: object) -> int:
    """The value of an ``x-mqboard-requeue-count`` header (0 when absent or garbled)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    if isinstance(value, bool) or value is None:
        return 0
    try:
        return min(max(int(str(value).strip()), 0), 2**31 - 1)
    except ValueError:
        return 0


def _failure_info(dlq: str, kind: str, **fields: Any) -> FailureInfo:
    """A FailureInfo of ``fields`` with its texts cut, at least 1 attempt and its
    fingerprint, built once (``dataclasses.replace`` would build a frozen one twice,
    and capture builds one or more per letter)."""
    message = fields.get("exception_message", "")
    origin = _group_origin(
        fields.get("origin_topic"), fields.get("origin_queue"), fields.get("origin_exchange"), dlq
    )
    fields["fingerprint"] = fingerprint(
        origin=f"{kind}:{origin}",
        reason=fields.get("reason", ""),
        exception_class=fields.get("exception_class", ""),
        exception_message=message,
        task_name=fields.get("task_name", ""),
    )
    fields["exception_message"] = message[:MAX_TEXT]
    fields["wrapper_message"] = fields.get("wrapper_message", "")[:MAX_TEXT]
    fields["attempts"] = max(1, fields.get("attempts", 1))
    return FailureInfo(kind=kind, **fields)


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
    return _failure_info(
        dlq,
        "amqp",
        conventions=tuple(names) or (UNKNOWN,),
        message_id=message_id or str(fields.get("task_id") or ""),
        notes=tuple(notes),
        requeue_count=read_requeue_count(found.get(REQUEUE_COUNT_HEADER)),
        **fields,
    )


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
    headers: Iterable[tuple[str, str | bytes | None]] | None,
    *,
    dlq: str = "",
    timestamp: datetime | None = None,
) -> FailureInfo:
    """Failure metadata of a Kafka dead-letter record from its headers.

    ``timestamp`` is the record's own timestamp: when it was written to the
    DLQ topic, which is when it failed (the conventions carry the original
    record's time, not the failure's).
    """
    values: dict[str, list[bytes | None]] = {}
    for key, value in header_pairs(headers):
        if value is None or isinstance(value, bytes | bytearray):
            values.setdefault(key.lower(), []).append(bytes(value) if value is not None else None)
        elif isinstance(value, str):
            values.setdefault(key.lower(), []).append(value.encode("utf-8"))
    raw = _generation(values, 0)
    found = _read(raw)
    notes = [note for f in found for note in f.notes]
    message_id = next(
        (conventions.text(raw[k]) or "" for k in _MESSAGE_ID_HEADERS if raw.get(k)), ""
    )
    requeued = read_requeue_count(raw.get(REQUEUE_COUNT_HEADER))
    if not found:
        return _failure_info(
            dlq,
            "kafka",
            requeue_count=requeued,
            message_id=message_id,
            first_failed_at=timestamp,
            last_failed_at=timestamp,
        )
    main = found[0]
    if len(found) > 1:
        notes.append(
            f"headers of several conventions ({', '.join(f.convention for f in found)});"
            f" {main.convention} was used"
        )
    return _failure_info(
        dlq,
        "kafka",
        conventions=tuple(f.convention for f in found),
        origin_topic=main.topic,
        origin_partition=main.partition,
        origin_offset=main.offset,
        reason=main.reason,
        exception_class=main.exception_class,
        exception_message=main.exception_message,
        component=main.component,
        wrapper_class=main.wrapper_class,
        wrapper_message=main.wrapper_message,
        requeue_count=requeued,
        attempts=main.attempts or 1,
        first_failed_at=timestamp,
        last_failed_at=timestamp,
        message_id=message_id,
        notes=tuple(notes),
        history=_earlier(values, dlq),
    )


def _generation(values: dict[str, list[bytes | None]], back: int) -> conventions.Raw:
    """The headers as they were ``back`` failures ago: each key's ``back``-th value from the
    end (0: the newest, as ``lastHeader``); keys that were not repeated that often drop out."""
    return {key: found[-1 - back] for key, found in values.items() if len(found) > back}


def _read(raw: conventions.Raw) -> list[conventions.Found]:
    return [f for f in (reader(raw) for reader in conventions.READERS) if f is not None]


def _earlier(values: dict[str, list[bytes | None]], dlq: str) -> tuple[EarlierFailure, ...]:
    """The failures before the newest one, newest first, from repeated convention headers."""
    depth = min(max((len(v) for v in values.values()), default=0), MAX_HISTORY + 1)
    history: list[EarlierFailure] = []
    for back in range(1, depth):
        found = _read(_generation(values, back))
        if not found:
            continue
        main = found[0]
        info = _failure_info(
            dlq,
            "kafka",
            origin_topic=main.topic,
            reason=main.reason,
            exception_class=main.exception_class,
            exception_message=main.exception_message,
        )
        history.append(
            EarlierFailure(
                convention=main.convention,
                topic=main.topic,
                partition=main.partition,
                offset=main.offset,
                reason=main.reason,
                component=main.component,
                exception_class=main.exception_class,
                exception_message=main.exception_message[:HISTORY_TEXT],
                fingerprint=info.fingerprint,
            )
        )
    return tuple(history)
