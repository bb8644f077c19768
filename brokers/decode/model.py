"""The frozen results the decoder hands across the boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

FORMATS = ("null", "empty", "json", "msgpack", "celery", "protobuf", "text", "binary")


@dataclass(frozen=True)
class CeleryTask:
    """One Celery task message, protocol 1 or 2.

    ``args`` and ``kwargs`` are ``None`` when the body could not be decoded
    (pickle, YAML, too large); ``argsrepr``/``kwargsrepr`` may still say what
    they were. Datetimes are timezone-aware; a naive ``eta`` is taken as UTC.
    """

    name: str
    id: str
    args: tuple[object, ...] | None
    kwargs: Mapping[str, object] | None
    retries: int | None = None
    eta: datetime | None = None
    expires: datetime | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    origin: str | None = None
    protocol: int = 2
    argsrepr: str | None = None
    kwargsrepr: str | None = None


@dataclass(frozen=True)
class TaskFailure:
    """Why a Celery task failed, from the message's headers or the task's stored result.

    ``exception`` is the class (module-qualified unless a builtin), ``status``
    the result backend's state (``""`` when read from headers), ``source``
    says where it was read: ``"headers"`` or ``"result backend"``.
    """

    exception: str
    message: str
    traceback: str
    status: str
    source: str


@dataclass(frozen=True)
class ProtoField:
    """One field of a schemaless Protobuf message.

    ``value`` is the unsigned int for varint/fixed32/fixed64, a tuple of
    fields for a nested message, ``str`` for printable UTF-8 and ``bytes``
    otherwise. The other readings are there because without the schema the
    wire type alone cannot say whether a number was signed or a float.
    """

    number: int
    wire_type: int
    value: int | str | bytes | tuple[ProtoField, ...]
    signed: int | None = None
    zigzag: int | None = None
    as_float: float | None = None

    @property
    def kind(self) -> str:
        if self.wire_type == 0:
            return "varint"
        if self.wire_type == 1:
            return "fixed64"
        if self.wire_type == 5:
            return "fixed32"
        if isinstance(self.value, tuple):
            return "message"
        return "string" if isinstance(self.value, str) else "bytes"


@dataclass(frozen=True)
class Decoded:
    """A message body made fit to show.

    ``format`` is one of :data:`FORMATS`; json/msgpack/celery/protobuf mean the
    body really parsed. ``text`` is what to display (at most ``limit``
    characters, except a hex dump which covers at most ``limit`` bytes);
    ``truncated`` says it was cut. ``value`` is the parsed structure made
    JSON-safe (bytes as ``{"$bytes": base64}``), or ``None``.
    """

    format: str
    size: int
    truncated: bool = False
    text: str = ""
    value: object = None
    celery: CeleryTask | None = None
    protobuf: tuple[ProtoField, ...] | None = None
    note: str = ""


@dataclass(frozen=True)
class HeaderValue:
    """One row of a header table; ``as_int`` is set for binary integers."""

    key: str
    type_name: str
    display: str
    as_int: int | None = None


@dataclass(frozen=True)
class DeathEvent:
    """One entry of RabbitMQ's ``x-death`` history."""

    queue: str | None
    reason: str | None
    count: int | None
    time: datetime | None
    exchange: str | None
    routing_keys: tuple[str, ...] = ()
    original_expiration: str | None = None
