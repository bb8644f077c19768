"""Response schemas that several features' APIs share: what ``brokers.decode`` reads."""

from __future__ import annotations

from dashboard.core.api import DateTimeText, Out


class DeathEventOut(Out):
    """One entry of RabbitMQ's x-death history."""

    queue: str | None
    reason: str | None
    count: int | None
    time: DateTimeText | None
    exchange: str | None
    routing_keys: list[str]
    original_expiration: str | None
