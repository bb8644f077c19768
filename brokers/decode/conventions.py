"""Readers for the header conventions that say where a Kafka dead letter came from.

Each reader takes the record's headers as a lowercase-key dict (the newest
value of a repeated key, as Kafka's ``lastHeader``; see
:mod:`brokers.decode.metadata`) and returns the fields it found, or
``None`` when the convention is absent. Values are untrusted: a reader never
raises, and a value it cannot read becomes a note instead.

* Spring Kafka (``DeadLetterPublishingRecoverer``): ``kafka_dlt-original-topic``,
  ``-original-partition`` (4-byte big-endian int), ``-original-offset`` and
  ``-original-timestamp`` (8-byte big-endian longs), ``-exception-fqcn``,
  ``-exception-cause-fqcn``, ``-exception-message``; attempts from
  ``kafka_deliveryAttempt`` or the retry topics' ``retry_topic-attempts``.
  A listener's exception reaches the recoverer wrapped in
  ``ListenerExecutionFailedException``, whose message is
  ``"Listener method '…' threw exception; <the cause's message>"``: the letter
  takes the cause's class and message (the message from the text after
  ``"threw exception; "``, a ``-exception-cause-message`` header if a
  producer adds one, or the ``Caused by:`` line of ``-exception-stacktrace``)
  and keeps the wrapper's class and message apart (``wrapper_class``,
  ``wrapper_message``).
* Kafka Connect (``errors.deadletterqueue.context.headers.enable``):
  ``__connect.errors.topic``, ``.partition``, ``.offset``, ``.stage``,
  ``.class.name`` (the converter, transformation or connector that failed),
  ``.exception.class.name``, ``.exception.message``, all UTF-8 strings.
* Plain ``x-original-topic``, ``x-original-partition``, ``x-original-offset``
  and ``x-exception`` (``"Class: message"``), UTF-8 strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

Raw = dict[str, bytes | None]

# Spring wraps the listener's exception in this one; the cause says more.
_SPRING_WRAPPERS = ("ListenerExecutionFailedException",)
# What follows this in the wrapper's message is the cause's own message.
_SPRING_THREW = "threw exception; "
_STACK_LINES = 400  # lines of a stack trace searched for the cause's "Caused by:" line


@dataclass
class Found:
    convention: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    reason: str = ""
    exception_class: str = ""
    exception_message: str = ""
    component: str = ""
    attempts: int | None = None
    failed_at: datetime | None = None
    # Spring: the wrapper the cause was thrown in, when the letter reads the cause instead.
    wrapper_class: str = ""
    wrapper_message: str = ""
    notes: list[str] = field(default_factory=list)


def text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return bytes(raw).decode("utf-8", "replace")


def number(raw: bytes | None, *, binary_first: bool) -> int | None:
    """An integer header: 4/8-byte big-endian (Spring) or decimal digits (everyone else).

    ``binary_first`` decides what a 4- or 8-byte value of digits means: Spring
    writes ``int``/``long`` in binary, the others write text.
    """
    if raw is None:
        return None
    raw = bytes(raw)
    binary = int.from_bytes(raw, "big", signed=True) if len(raw) in (4, 8) else None
    decimal: int | None = None
    candidate = raw.strip()
    if 0 < len(candidate) <= 20 and candidate.lstrip(b"+-").isdigit():
        decimal = int(candidate)
    if binary_first:
        return binary if binary is not None else decimal
    return decimal if decimal is not None else binary


def epoch_ms(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _checked(found: Found, name: str, raw: bytes | None, value: int | None) -> int | None:
    if raw is not None and value is None:
        found.notes.append(f"header {name} could not be read as a number")
    return value


def spring(headers: Raw) -> Found | None:
    if not any(key.startswith("kafka_dlt-") for key in headers):
        return None
    found = Found("spring")
    found.topic = text(headers.get("kafka_dlt-original-topic"))
    for name in ("partition", "offset"):
        key = f"kafka_dlt-original-{name}"
        raw = headers.get(key)
        setattr(found, name, _checked(found, key, raw, number(raw, binary_first=True)))
    fqcn = text(headers.get("kafka_dlt-exception-fqcn")) or ""
    message = text(headers.get("kafka_dlt-exception-message")) or ""
    cause = text(headers.get("kafka_dlt-exception-cause-fqcn")) or ""
    if cause and (not fqcn or fqcn.endswith(_SPRING_WRAPPERS)):
        found.wrapper_class, found.wrapper_message = fqcn, message
        fqcn, message = cause, _spring_cause_message(headers, cause, message)
    found.exception_class = fqcn or text(headers.get("kafka_dlt-key-exception-fqcn")) or ""
    found.exception_message = message or text(headers.get("kafka_dlt-key-exception-message")) or ""
    for key in ("kafka_deliveryattempt", "retry_topic-attempts"):
        raw = headers.get(key)
        attempts = _checked(found, key, raw, number(raw, binary_first=True))
        if attempts is not None and attempts > 0:
            found.attempts = max(found.attempts or 0, attempts)
    return found


def _spring_cause_message(headers: Raw, cause: str, wrapper_message: str) -> str:
    """The cause's own message: a cause-message header, the text after the wrapper's
    "threw exception; ", the stack trace's ``Caused by: <cause>: …`` line, else the
    wrapper's message (better than nothing)."""
    own = text(headers.get("kafka_dlt-exception-cause-message"))
    if own:
        return own
    _, found, rest = wrapper_message.partition(_SPRING_THREW)
    if found and rest.strip():
        return rest.strip()
    trace = text(headers.get("kafka_dlt-exception-stacktrace")) or ""
    prefix = f"Caused by: {cause}"
    for line in trace.splitlines()[:_STACK_LINES]:
        line = line.strip()
        if line == prefix:
            return ""
        if line.startswith(prefix + ": "):
            return line[len(prefix) + 2 :].strip()
    return wrapper_message


def connect(headers: Raw) -> Found | None:
    prefix = "__connect.errors."
    if not any(key.startswith(prefix) for key in headers):
        return None
    found = Found("connect")
    found.topic = text(headers.get(prefix + "topic"))
    for name in ("partition", "offset"):
        raw = headers.get(prefix + name)
        setattr(found, name, _checked(found, prefix + name, raw, number(raw, binary_first=False)))
    found.reason = (text(headers.get(prefix + "stage")) or "").lower()
    found.component = text(headers.get(prefix + "class.name")) or ""
    found.exception_class = text(headers.get(prefix + "exception.class.name")) or ""
    found.exception_message = text(headers.get(prefix + "exception.message")) or ""
    return found


def x_original(headers: Raw) -> Found | None:
    keys = ("x-original-topic", "x-original-partition", "x-original-offset", "x-exception")
    if not any(key in headers for key in keys):
        return None
    found = Found("x-original")
    found.topic = text(headers.get("x-original-topic"))
    for name in ("partition", "offset"):
        key = f"x-original-{name}"
        raw = headers.get(key)
        setattr(found, name, _checked(found, key, raw, number(raw, binary_first=False)))
    exception = text(headers.get("x-exception")) or ""
    name, sep, message = exception.partition(": ")
    if sep and name and " " not in name.strip():
        found.exception_class, found.exception_message = name.strip(), message.strip()
    else:
        found.exception_message = exception.strip()
    found.exception_class = found.exception_class or text(headers.get("x-exception-class")) or ""
    found.exception_message = (
        found.exception_message or text(headers.get("x-exception-message")) or ""
    )
    return found


READERS = (spring, connect, x_original)
