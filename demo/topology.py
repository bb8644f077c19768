"""Names and arguments shared by the workload and the Celery worker.

Both processes declare the same queues; RabbitMQ refuses a redeclaration whose
arguments differ (PRECONDITION_FAILED), so the arguments live in one place.
Every exchange, queue, topic and group name carries the same prefix so that
tests (and two demos on one broker) never see each other's traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

DLQ_ROUTING_KEY = "dlq"
USER_EVENT_KEYS = ("user.created", "user.updated", "user.deleted")
USER_EVENTS_BINDING = "user.*"
KAFKA_USER_EVENT_PARTITIONS = 6
KAFKA_DLQ_PARTITIONS = 3
RESIZE_TASK = "demo.tasks.resize_image"
APP_ID = "demo-workload"


@dataclass(frozen=True)
class Names:
    """Every broker-side name the demo uses, with the prefix applied."""

    prefix: str = ""

    def _p(self, name: str) -> str:
        return f"{self.prefix}{name}"

    # RabbitMQ
    @property
    def events_exchange(self) -> str:
        return self._p("events")

    @property
    def dlx(self) -> str:
        return self._p("dlx")

    @property
    def user_events_queue(self) -> str:
        return self._p("user-events")

    @property
    def task_queue(self) -> str:
        return self._p("task-queue")

    @property
    def dlq(self) -> str:
        return self._p("dlq")

    @property
    def celery_queue(self) -> str:
        return self._p("celery-tasks")

    @property
    def celery_control(self) -> str:
        """Celery's control exchange namespace (``<x>.pidbox``, ``reply.<x>.pidbox``)."""
        return self._p("celery")

    @property
    def celery_events(self) -> str:
        return self._p("celeryev")

    # Kafka
    @property
    def kafka_user_events(self) -> str:
        return self._p("user-events")

    @property
    def kafka_dlq(self) -> str:
        return self._p("user-events-dlq")

    @property
    def kafka_group(self) -> str:
        return self._p("user-events-processor")


def dead_letter_arguments(names: Names) -> dict[str, Any]:
    """Queue arguments that send rejected messages through ``dlx`` into ``dlq``."""
    return {"x-dead-letter-exchange": names.dlx, "x-dead-letter-routing-key": DLQ_ROUTING_KEY}
