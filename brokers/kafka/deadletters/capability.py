"""Kafka's dead-letter capability: what ``KIND.deadletters`` answers for Kafka clusters.

Discovery finds DLQ topics by name and by configuration
(``DiscoveryOptions.configured``); capture reads a topic with a consumer group
(``CaptureOptions.group``) and commits offsets after the database commit
(:mod:`.capture`); the sender produces with an idempotent producer and waits
for delivery reports (:mod:`.requeue`); ``missing`` reads the metadata to say
which topics are gone before a bulk requeue. Capture keys name one record exactly
(topic, partition, offset), and a requeued letter that fails again is
recognised by its key and fingerprint.
"""

from __future__ import annotations

import json
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
from brokers.kafka.adapter import KafkaBroker
from brokers.kafka.deadletters import requeue
from brokers.kafka.deadletters.capture import KafkaCapture
from brokers.kafka.deadletters.discovery import discover_kafka


class KafkaDeadLetters:
    capture_keys = CaptureKeys.EXACT
    same_message = SameMessage.KEY_AND_FINGERPRINT
    keyed = True
    not_found_hint = "it is not in MQB_KAFKA_DLQ_TOPICS"
    noun = "topic"
    scans = False
    depth_note = "depth is records kept (captured or not)"
    target_fields: tuple[TargetField, ...] = (TargetField("topic", "Topic", required=True),)

    def describe(self, vhost: str, name: str) -> str:
        return f"topic {name!r}"

    async def discover(self, broker: Broker, options: DiscoveryOptions) -> Discovery:
        return await discover_kafka(broker, configured=options.configured)

    def capture(
        self,
        config: ClusterConfig,
        vhost: str,
        dlq: str,
        sink: CaptureSink,
        options: CaptureOptions,
    ) -> CaptureEngine:
        return KafkaCapture(
            KafkaBroker(config).client_config(),
            dlq,
            sink,
            group_id=options.group,
            batch_size=options.batch_size,
            timeout=config.timeout,
            max_message_bytes=options.max_message_bytes,
            ack_delay=options.ack_delay,
        )

    def sender(self, config: ClusterConfig, address: str) -> LetterSender:
        return requeue.KafkaSender(KafkaBroker(config).client_config(), config.timeout)

    def target_from(self, form: Mapping[str, Any]) -> RequeueTarget | None:
        return RequeueTarget(topic=str(form.get("topic"))) if form.get("topic") else None

    def without_noop(self, letter: StoredLetter, edit: Edit) -> Edit | None:
        if edit.body == b"" and requeue.value_is_null(letter):
            # A null value is shown as an empty body; leaving it so keeps it null.
            return None if edit.headers is None else Edit(headers=edit.headers)
        return edit

    def body_is_json(self, letter: StoredLetter) -> bool:
        if "json" in media_type(str(letter.properties.get("content_type") or "")):
            return True
        # Records carry no content type: a value that parses as JSON is edited as JSON.
        try:
            json.loads(letter.body)
        except ValueError:
            return False
        return not letter.body_truncated

    def edited_headers(
        self, letter: StoredLetter, headers: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(headers, list) or not all(
            isinstance(h, list) and len(h) == 2 and isinstance(h[0], str) for h in headers
        ):
            raise InvalidLetter("Kafka headers: a JSON list of [key, value] pairs")
        validate.kafka_headers((k, v if isinstance(v, str) else None) for k, v in headers)
        before = {k: v for k, v in letter.headers} if isinstance(letter.headers, list) else {}
        return before, {k: v for k, v in headers}

    def outgoing(
        self, letter: StoredLetter, target: RequeueTarget | None, edit: Edit | None
    ) -> OutgoingLetter:
        return requeue.outgoing(letter, target, edit)

    async def missing(
        self, broker: Broker, destinations: Sequence[Destination]
    ) -> dict[Destination, str]:
        """Topics not in the cluster's metadata now (read once, for every destination)."""
        gone: dict[Destination, str] = {}
        wanted: dict[Destination, str] = {}
        for destination in destinations:
            topic = destination.get("topic")
            try:
                wanted[destination] = validate.kafka_topic(topic)
            except validate.InvalidValue as exc:
                gone[destination] = f"topic {topic!r} cannot be named: {exc.message}"
        if wanted:
            adapter = cast(KafkaBroker, broker)  # the kind's own adapter
            names = await adapter.read_metadata(lambda metadata: set(metadata.topics))
            for destination, topic in wanted.items():
                if topic not in names:
                    gone[destination] = f"topic {topic!r} does not exist"
        return gone


DEAD_LETTERS = KafkaDeadLetters()
