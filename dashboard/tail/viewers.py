"""Live tails for the websocket consumers: the only way they reach ``brokers.<kind>.tail``.

``join_queue_tail`` / ``join_topic_tail`` return a :class:`Viewer` of the one
tail of that entity in this process (started by the first viewer, stopped
when the last one calls :meth:`Viewer.leave`). Settings: ``MQB_TAIL_RATE``
(messages per second per viewer), ``MQB_TAIL_BUFFER`` and
``MQB_TAIL_BUFFER_BYTES`` (the RabbitMQ tap queue's caps), ``MQB_TAIL_PREVIEW``
(characters of a body shown), ``MQB_TAIL_MAX_RUNNING`` (distinct tails per
process; the per-user count, ``MQB_USER_MAX_TAILS``, is kept by the websocket).
"""

from __future__ import annotations

from django.conf import settings

from brokers.base import ConfigError, NotSupported
from brokers.base.tail import TailSource
from brokers.kafka import KafkaBroker
from brokers.kafka.tail import open_kafka_tap
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.tail import open_rabbitmq_tap
from dashboard.core.clusters import get_cluster_config
from dashboard.core.connections import get_broker
from dashboard.tail.hub import Tail, TailKey, Viewer, join, running_tails

__all__ = ["Tail", "TailKey", "Viewer", "join_queue_tail", "join_topic_tail", "running_tails"]


def _check_kind(slug: str, kind: str) -> None:
    config = get_cluster_config(slug)  # ConfigError for an unknown cluster
    if config.kind != kind:
        raise NotSupported(f"cluster {slug!r} is not a {kind} cluster")


async def join_queue_tail(slug: str, vhost: str, name: str) -> Viewer:
    """Watch the messages flowing into RabbitMQ queue ``name`` of ``vhost``."""
    _check_kind(slug, "rabbitmq")

    async def opener() -> TailSource:
        broker = await get_broker(slug)
        if not isinstance(broker, RabbitMQBroker):
            raise ConfigError(f"cluster {slug!r} is not a RabbitMQ cluster")
        return await open_rabbitmq_tap(
            broker,
            vhost,
            name,
            rate=settings.MQB_TAIL_RATE,
            buffer=settings.MQB_TAIL_BUFFER,
            buffer_bytes=settings.MQB_TAIL_BUFFER_BYTES,
            preview=settings.MQB_TAIL_PREVIEW,
        )

    return await join(
        ("queue", slug, vhost, name), opener, settings.MQB_TAIL_RATE, settings.MQB_TAIL_MAX_RUNNING
    )


async def join_topic_tail(slug: str, topic: str) -> Viewer:
    """Watch the records produced to Kafka topic ``topic`` from now on."""
    _check_kind(slug, "kafka")

    async def opener() -> TailSource:
        broker = await get_broker(slug)
        if not isinstance(broker, KafkaBroker):
            raise ConfigError(f"cluster {slug!r} is not a Kafka cluster")
        return await open_kafka_tap(
            broker, topic, rate=settings.MQB_TAIL_RATE, preview=settings.MQB_TAIL_PREVIEW
        )

    return await join(
        ("topic", slug, topic), opener, settings.MQB_TAIL_RATE, settings.MQB_TAIL_MAX_RUNNING
    )
