"""The contract every broker adapter fulfils.

An adapter wraps one cluster. It is created from a :class:`ClusterConfig`,
opened with :meth:`Broker.connect`, and closed with :meth:`Broker.close`; it can
also be used as an ``async with`` block. Everything that crosses this boundary
is a frozen dataclass, and every failure is a :class:`BrokerError` subclass, so
callers never see a library's own exception types.
"""

from __future__ import annotations

from types import TracebackType
from typing import ClassVar, Protocol, Self, runtime_checkable

from brokers.base.config import ClusterConfig
from brokers.base.results import DeadLetterQueue, Overview


@runtime_checkable
class Broker(Protocol):
    kind: ClassVar[str]
    config: ClusterConfig

    async def connect(self) -> None:
        """Open the connections the adapter needs; raise a BrokerError if it cannot."""

    async def close(self) -> None:
        """Release every connection; safe to call twice or after a failed connect."""

    async def ping(self) -> None:
        """Return when the cluster answers a real request; raise a BrokerError otherwise."""

    async def overview(self) -> Overview:
        """Version, nodes and counts of the whole cluster."""

    async def dead_letter_queues(
        self, limit: int = 50, *, vhost: str | None = None
    ) -> tuple[DeadLetterQueue, ...]:
        """Queues or topics named like dead-letter queues, with their depth.

        ``vhost`` narrows a RabbitMQ search to one vhost; other kinds ignore it.
        """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BrokerBase:
    """Shared ``async with`` plumbing for adapters."""

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
