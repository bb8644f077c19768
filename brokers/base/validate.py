"""Strings checked before they reach librdkafka or pamqp; a bad one is an :class:`InvalidValue`.

Why at this boundary: confluent-kafka 2.16 dies with SIGSEGV (no exception,
the whole process) on a header name holding a lone surrogate, raises
``UnicodeEncodeError`` for one in a topic, key or value, and cuts a header
name, or a header value given as ``str``, at its first NUL without a word
(the prefix is sent). pamqp raises on strings it cannot encode as UTF-8, on
short strings over 255 bytes and on exchange names over 127 characters. Every
write path (produce, publish, requeue, move) calls these checks first, so a
hostile string is a 400 naming its field and never a crash or a silently
changed message.

Rules:

* every string is strict UTF-8 (no lone surrogates, which JSON's ``\\ud800``
  escapes can carry);
* Kafka topics follow Kafka's own rule: ASCII letters, digits, ``.``, ``_``
  and ``-``, at most 249, not ``.`` or ``..``; header names and ``str`` header
  values hold no NUL (bytes values may);
* AMQP vhosts, queue names, routing keys, header table keys and short-string
  properties are at most 255 bytes of UTF-8; exchange names at most 127
  characters (pamqp's limit) as well. NUL is allowed: RabbitMQ accepts it and
  AMQP strings carry their length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from brokers.base import BrokerError

SHORT_STRING = 255  # bytes of an AMQP short string
EXCHANGE_CHARS = 127  # pamqp refuses longer exchange names
KAFKA_TOPIC_MAX = 249
MAX_DEPTH = 64  # AMQP tables nest; deeper than any real header
_KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]+")
AMQP_SHORT_PROPERTIES = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


class InvalidValue(BrokerError):
    """A string the broker client cannot send; ``field`` names where it was."""

    code = "invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", permanent=True)
        self.field = field


def utf8(text: str, field: str, *, max_bytes: int | None = None, nul: bool = True) -> bytes:
    """``text`` as strict UTF-8 bytes; InvalidValue if it cannot be (or breaks the limits)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValue(
            field,
            f"not valid UTF-8 (a lone surrogate U+{ord(text[exc.start]):04X}"
            f" at character {exc.start})",
        ) from None
    if not nul and "\x00" in text:
        raise InvalidValue(field, f"contains a NUL character (at {text.index(chr(0))})")
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidValue(field, f"longer than {max_bytes} bytes of UTF-8 ({len(data)})")
    return data


# -- Kafka --------------------------------------------------------------------


def kafka_topic(name: object, field: str = "topic") -> str:
    if not isinstance(name, str) or not name:
        raise InvalidValue(field, "a topic name is required")
    utf8(name, field)
    if len(name) > KAFKA_TOPIC_MAX or name in (".", "..") or not _KAFKA_TOPIC.fullmatch(name):
        raise InvalidValue(
            field,
            f"{name[:80]!r} is not a Kafka topic name (letters, digits, '.', '_' and '-',"
            f" at most {KAFKA_TOPIC_MAX}, not '.' or '..')",
        )
    return name


def kafka_headers(headers: Iterable[tuple[object, object]], field: str = "headers") -> None:
    for i, (name, value) in enumerate(headers):
        if not isinstance(name, str):
            raise InvalidValue(f"{field}[{i}].key", "a header name must be a string")
        utf8(name, f"{field}[{i}].key", nul=False)
        if isinstance(value, str):
            utf8(value, f"{field}[{i}].value", nul=False)
        elif value is not None and not isinstance(value, bytes | bytearray | memoryview):
            raise InvalidValue(f"{field}[{i}].value", "a header value must be bytes, text or null")


def kafka_record(topic: str, key: object, value: object, headers: object) -> None:
    """Everything of one record that librdkafka would read as a C string."""
    kafka_topic(topic)
    for field, part in (("key", key), ("value", value)):
        if isinstance(part, str):
            utf8(part, field)
    if isinstance(headers, Mapping):
        headers = list(headers.items())
    kafka_headers(headers or [])  # type: ignore[arg-type]


# -- AMQP (pamqp) ---------------------------------------------------------------


def amqp_short(text: object, field: str) -> str:
    """An AMQP short string: vhost, queue name, routing key, table key, property."""
    if not isinstance(text, str):
        raise InvalidValue(field, "must be text")
    utf8(text, field, max_bytes=SHORT_STRING)
    return text


def amqp_exchange(name: object, field: str = "exchange") -> str:
    amqp_short(name, field)
    assert isinstance(name, str)
    if len(name) > EXCHANGE_CHARS:
        raise InvalidValue(field, f"longer than {EXCHANGE_CHARS} characters")
    return name


def amqp_value(value: object, field: str, depth: int = 0) -> None:
    """A header value: strings strict UTF-8; tables and arrays checked all the way down."""
    if depth > MAX_DEPTH:
        raise InvalidValue(field, f"nested more than {MAX_DEPTH} deep")
    if isinstance(value, str):
        utf8(value, field)
    elif isinstance(value, Mapping):
        amqp_table(value, field, depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            amqp_value(item, f"{field}[{i}]", depth + 1)


def amqp_table(table: Mapping[Any, Any] | None, field: str = "headers", depth: int = 0) -> None:
    for i, (key, value) in enumerate((table or {}).items()):
        where = f"{field}.{key}" if isinstance(key, str) and _printable(key) else f"{field}[{i}]"
        amqp_short(key, f"{where} (name)")
        amqp_value(value, where, depth)


def amqp_properties(properties: Mapping[str, Any], field: str = "properties") -> None:
    for name in AMQP_SHORT_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, str):
            amqp_short(value, f"{field}.{name}")


def amqp_message(
    *,
    vhost: str,
    exchange: str,
    routing_key: str,
    headers: Mapping[Any, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> None:
    """Everything of one publish that pamqp writes as a string."""
    amqp_short(vhost, "vhost")
    amqp_exchange(exchange)
    amqp_short(routing_key, "routing_key")
    amqp_table(headers)
    amqp_properties(properties or {})


def _printable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return text.isprintable() and len(text) <= 80
