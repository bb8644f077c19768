"""The one decoder of message bodies and headers, shared by RabbitMQ and Kafka pages.

Bodies, keys and header values come from brokers and are untrusted: they may
be huge, binary or built to hurt. Everything here is a pure function that never
raises on any bytes and does bounded work:

* :func:`decode_body` recognises, in order: no body, empty body, Celery task
  messages (protocol 2 by their headers, protocol 1 by the body's shape), JSON
  (by content type, or a body starting with ``{``/``[``), MessagePack (by
  content type, or a single map/array that is not UTF-8), UTF-8 text,
  schemaless Protobuf and, failing all, a hex dump.
* JSON and MessagePack are parsed only up to 1 MiB (:data:`PARSE_LIMIT`);
  Protobuf only up to ``limit`` bytes. Display text stops at ``limit``
  characters (a hex dump at ``limit`` bytes) and says so with ``truncated``.
* Nesting never raises ``RecursionError``: JSON too deep to parse falls back
  to text, Protobuf stops at depth 8 and 10,000 fields, rendering is iterative.
* Pickle is never unpickled, compressed bodies are not decompressed and only
  UTF-8 text is recognised (other charsets show as hex).

:func:`decode_headers` and :func:`decode_x_death` turn AMQP field tables and
Kafka header lists into rows and RabbitMQ's dead-letter history into a
timeline. Results are frozen dataclasses; no Django, no I/O.

Dead-letter metadata, for every broker kind: :mod:`.metadata` turns a dead
letter's headers into a normalised ``FailureInfo`` with a grouping
fingerprint (:mod:`.fingerprint`, :mod:`.conventions`); :mod:`.values` stores
header and property values as reversible JSON.
"""

from __future__ import annotations

from .body import DEFAULT_LIMIT, PARSE_LIMIT, decode_body, media_type
from .headers import Headers, decode_headers, decode_x_death
from .model import (
    FORMATS,
    CeleryTask,
    DeathEvent,
    Decoded,
    HeaderValue,
    ProtoField,
    TaskFailure,
)
from .protobuf import MAX_DEPTH, MAX_FIELDS, parse_protobuf
from .render import hexdump

__all__ = [
    "DEFAULT_LIMIT",
    "FORMATS",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "PARSE_LIMIT",
    "CeleryTask",
    "DeathEvent",
    "Decoded",
    "HeaderValue",
    "Headers",
    "ProtoField",
    "TaskFailure",
    "decode_body",
    "decode_headers",
    "decode_x_death",
    "hexdump",
    "media_type",
    "parse_protobuf",
]
