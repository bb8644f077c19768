"""RabbitMQ's dead-letter capability: what ``KIND.deadletters`` answers for RabbitMQ clusters.

Discovery reads each vhost asked for (all of them when none is), several at
once, and merges what it found; capture consumes a DLQ with manual acks
(:mod:`.capture`); the sender publishes with confirms and mandatory routing
(:mod:`.requeue`); :mod:`.destinations` says which exchanges are gone before a bulk
requeue. Capture keys are content hashes (redeliveries are claimed,
byte-identical letters numbered), and a requeued letter that fails again is
recognised by its message id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, cast

from brokers.base import ClusterConfig, validate
from brokers.base.contract import Broker
from brokers.base.deadletters import (
    CaptureEngine,
    CaptureKeys,
    CaptureOptions,
    CaptureSink,
    Destination,
    Discovery,
    DiscoveryOptions,
    Edit,
    InvalidLetter,
    LetterSender,
    OutgoingLetter,
    RequeueTarget,
    SameMessage,
    StoredLetter,
    TargetField,
)
from brokers.decode.body import media_type
from brokers.rabbitmq.deadletters import requeue
from brokers.rabbitmq.deadletters.capture import RabbitMQCapture
from brokers.rabbitmq.deadletters.destinations import missing_exchanges
from brokers.rabbitmq.deadletters.discovery import discover_rabbitmq
from brokers.rabbitmq.models import ManagementAPI


class RabbitMQDeadLetters:
    capture_keys = CaptureKeys.CONTENT
    same_message = SameMessage.MESSAGE_ID
    keyed = False
    not_found_hint = ""
    noun = "queue"
    scans = True
    depth_note = "depths lag up to 5 s"
    target_fields: tuple[TargetField, ...] = (
        TargetField("exchange", "Exchange", placeholder="(default exchange)"),
        TargetField("routing_key", "Routing key", required=True),
    )

    def describe(self, vhost: str, name: str) -> str:
        return f"queue {name!r} in vhost {vhost!r}"

    async def discover(self, broker: Broker, options: DiscoveryOptions) -> Discovery:
        api = cast(ManagementAPI, broker)  # a RabbitMQBroker: the kind's own adapter
        found = await asyncio.gather(
            *(
                discover_rabbitmq(api, vhost=vhost, scan_limit=options.scan_limit)
                for vhost in options.vhosts or (None,)
            )
        )
        return merged(found)

    def capture(
        self,
        config: ClusterConfig,
        vhost: str,
        dlq: str,
        sink: CaptureSink,
        options: CaptureOptions,
    ) -> CaptureEngine:
        return RabbitMQCapture(
            config,
            vhost,
            dlq,
            sink,
            prefetch=options.prefetch,
            batch_size=options.batch_size,
            max_message_bytes=options.max_message_bytes,
            ack_delay=options.ack_delay,
        )

    def sender(self, config: ClusterConfig, address: str) -> LetterSender:
        return requeue.RabbitMQSender(config, address)

    def target_from(self, form: Mapping[str, Any]) -> RequeueTarget | None:
        if not (form.get("exchange") or form.get("routing_key")):
            return None
        return RequeueTarget(
            exchange=str(form.get("exchange") or ""), routing_key=str(form.get("routing_key") or "")
        )

    def without_noop(self, letter: StoredLetter, edit: Edit) -> Edit | None:
        return edit

    def body_is_json(self, letter: StoredLetter) -> bool:
        return "json" in media_type(str(letter.properties.get("content_type") or ""))

    def edited_headers(
        self, letter: StoredLetter, headers: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(headers, dict):
            raise InvalidLetter("headers: a JSON object")
        validate.amqp_table(headers)
        before = dict(letter.headers) if isinstance(letter.headers, dict) else {}
        return before, dict(headers)

    def outgoing(
        self, letter: StoredLetter, target: RequeueTarget | None, edit: Edit | None
    ) -> OutgoingLetter:
        return requeue.outgoing(letter, target, edit)

    async def missing(
        self, broker: Broker, destinations: Sequence[Destination]
    ) -> dict[Destination, str]:
        return await missing_exchanges(cast(ManagementAPI, broker), destinations)


def merged(parts: list[Discovery]) -> Discovery:
    """One discovery of several vhosts."""
    if len(parts) == 1:
        return parts[0]
    return Discovery(
        dlqs=tuple(d for part in parts for d in part.dlqs),
        checked_at=min(part.checked_at for part in parts),
        scanned=sum(part.scanned for part in parts),
        complete=all(part.complete for part in parts),
        notes=tuple(note for part in parts for note in part.notes),
    )


DEAD_LETTERS = RabbitMQDeadLetters()
