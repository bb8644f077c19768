"""The live tail's websocket messages: ``tail.status`` and ``tail.message``.

A tail's :class:`~dashboard.tail.hub.Viewer` builds them (one queue
of events per viewer) and the tail websocket sends them; the websocket also
sends the short ``tail.status`` of its own states (paused, refused), which
carries only ``state`` and ``message``. Each tailed message is rendered once,
as :class:`AmqpTailed` or :class:`KafkaTailed`, and serialised once to JSON
text (:class:`RenderedTailed`) that every viewer's :class:`TailFrame` embeds
as is: with ten viewers of a tail, the message is dumped once, not ten times.
:class:`TailMessage` declares the frame's fields (:meth:`TailFrame.event` builds it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from ninja import Field

from dashboard.core.api import DateTimeText, Out
from dashboard.core.events import Event

TailState = Literal["paused", "refused", "starting", "running", "error", "untappable"]


class TailDecodedOut(Out):
    """A body or key made fit to show: at most a preview's worth of ``text``."""

    format: str = Field(examples=["json", "msgpack", "celery", "protobuf", "text", "hex"])
    size: int = Field(description="bytes")
    text: str
    truncated: bool
    note: str


class _Tailed(Out):
    received_at: DateTimeText = Field(description="when the tap got it")
    size: int = Field(description="bytes")
    body: TailDecodedOut
    headers: list[tuple[str, str, str]] = Field(description="[key, type, value shown]")


class AmqpTailed(_Tailed):
    """A message seen on a RabbitMQ queue's bindings."""

    exchange: str | None
    routing_key: str | None
    properties: dict[str, str]


class KafkaTailed(_Tailed):
    """A record read from a Kafka topic's end."""

    partition: int
    offset: int | None
    timestamp: DateTimeText | None
    key: TailDecodedOut | None


Tailed = AmqpTailed | KafkaTailed


class TailMessage(Event):
    """One tailed message, with the viewer's running counts."""

    type: Literal["tail.message"] = "tail.message"
    message: Tailed
    skipped: int = Field(description="messages this viewer did not see (rate limit, slow socket)")
    skipped_exact: bool = Field(description="false when the broker only said 'at least'")
    shown: int


@dataclass(frozen=True, slots=True)
class RenderedTailed:
    """A tailed message and its JSON text, made once per message and shared by the viewers."""

    message: Tailed
    text: str

    @classmethod
    def of(cls, message: Tailed) -> RenderedTailed:
        return cls(message, message.model_dump_json())


@dataclass(frozen=True, slots=True)
class TailFrame:
    """One viewer's ``tail.message``: the shared JSON of the message with this viewer's counts.

    :meth:`text` is the JSON of :class:`TailMessage` with the same fields.
    """

    rendered: RenderedTailed
    skipped: int
    skipped_exact: bool
    shown: int

    def text(self) -> str:
        return (
            f'{{"type":"tail.message","message":{self.rendered.text},"skipped":{self.skipped:d},'
            f'"skipped_exact":{json.dumps(self.skipped_exact)},"shown":{self.shown:d}}}'
        )

    def event(self) -> TailMessage:
        return TailMessage(
            message=self.rendered.message,
            skipped=self.skipped,
            skipped_exact=self.skipped_exact,
            shown=self.shown,
        )


class TailStatus(Event):
    """The tail's state; the counts are left out of the websocket's own paused and refused."""

    OPTIONAL = ("notes", "counting", "rate", "skipped", "skipped_exact", "shown")

    type: Literal["tail.status"] = "tail.status"
    state: TailState
    message: str = Field(description="why it is refused, failing or untappable; else empty")
    notes: list[str] | None = None
    counting: str | None = None
    rate: int | None = Field(default=None, description="the most messages a second one viewer gets")
    skipped: int | None = None
    skipped_exact: bool | None = None
    shown: int | None = None
