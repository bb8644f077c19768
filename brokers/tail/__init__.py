"""Live tails: the messages flowing through a RabbitMQ queue or a Kafka topic now.

Features: :func:`open_rabbitmq_tap` (a temporary exclusive queue bound like the
watched queue, see ``brokers.tail.rabbitmq``) and :func:`open_kafka_tap` (a
consumer reading from the end of every partition with a group that never
commits, see ``brokers.tail.kafka``). Both hand out :class:`TailBatch` es of
decoded :class:`TailMessage` s, read at most ``rate`` messages per second from
the broker, and count what they skipped. :class:`RateLimiter` is the "at most
N in any one second" limiter both taps and every viewer use.

No Django here; the dashboard reaches this through ``dashboard.services.tail``.
"""

from __future__ import annotations

from .common import NotTappable, TailBatch, TailMessage, TailSource, decode_for_tail
from .kafka import open_kafka_tap
from .limiter import RateLimiter
from .rabbitmq import open_rabbitmq_tap

__all__ = [
    "NotTappable",
    "RateLimiter",
    "TailBatch",
    "TailMessage",
    "TailSource",
    "decode_for_tail",
    "open_kafka_tap",
    "open_rabbitmq_tap",
]
