"""How the Kafka adapter calls librdkafka: in worker threads, under one deadline each.

A mixin of :class:`brokers.kafka.KafkaBroker`. Blocking calls run in an
executor with a timeout; admin futures are awaited with ``result`` (one) or
``gather`` (many, waited for in one worker thread); every librdkafka error
becomes a :class:`BrokerError` through ``translate``.

Consumer-group admin requests (DescribeGroups, OffsetFetch, OffsetCommit) go
through the group's coordinator, and librdkafka (2.16 included) aborts the
whole process when such a request times out inside it while its coordinator
requests are still queued and the broker later answers or is reconnected to
(assertion in ``rd_kafka_enq_once_del_source_return``, confluentinc/librdkafka
issue 4605; about 15 requests in flight on one client suffice). So librdkafka
gets ``group_request_timeout`` (the cluster's timeout plus ``GROUP_REQUEST_GRACE``)
for them, the caller still waits only the cluster's timeout, and when a caller
gives up on a request the client carrying it is retired: destroyed in a thread
of its own, long before librdkafka would time the request out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from brokers.base import BrokerError, BrokerUnavailable, ClusterConfig
from brokers.kafka.errors import LastError, kafka_error_of, translate

T = TypeVar("T")
K = TypeVar("K")

GROUP_REQUEST_GRACE = 60.0
"""seconds librdkafka keeps a consumer-group admin request past the caller's deadline"""


def retire(*clients: object) -> None:
    """Drop the last references to librdkafka clients in a thread of their own.

    Destroying a client waits for its broker threads; a client with requests
    in flight to a stalled broker must not hold up the event loop meanwhile.
    """
    held = list(clients)
    del clients
    threading.Thread(target=held.clear, name="kafka-retire", daemon=True).start()


class KafkaCalls:
    config: ClusterConfig
    _last_error: LastError

    @property
    def group_request_timeout(self) -> float:
        """librdkafka's own timeout for consumer-group admin requests (see the module)."""
        return self.config.timeout + GROUP_REQUEST_GRACE

    def abandoned(self) -> None:
        """A consumer-group admin request was given up on: retire the client carrying it."""

    async def result(
        self, future: concurrent.futures.Future[T], what: str, *, group: bool = False
    ) -> T:
        """Await one admin future within the timeout; raise a BrokerError on failure.
        ``group``: a consumer-group request, whose client is retired if given up on."""
        try:
            async with asyncio.timeout(self.config.timeout + 1):
                return await asyncio.wrap_future(future)
        except KafkaException as exc:
            raise self.translate(kafka_error_of(exc), what) from None
        except TimeoutError:
            future.cancel()
            if group:
                self.abandoned()
            raise self.translate(None, what) from None

    async def gather(
        self,
        futures: Mapping[K, concurrent.futures.Future[Any]],
        what: str = "admin request",
        *,
        group: bool = False,
    ) -> dict[K, Any]:
        """Await many admin futures under one deadline; a failed one maps to its BrokerError.
        ``group``: consumer-group requests, whose client is retired if given up on.

        The waiting happens in one worker thread: wrapping each future for the
        event loop costs a loop wake-up per future, and one batched ListOffsets
        call alone yields a future per partition (hundreds on a page).
        """
        if not futures:
            return {}
        loop = asyncio.get_running_loop()
        limit = self.config.timeout + 1
        try:
            async with asyncio.timeout(limit + 1):
                return await loop.run_in_executor(
                    None, lambda: self.wait_all(futures, what, group=group)
                )
        except TimeoutError:
            return self._answers(futures, what, group=group)

    def wait_all(
        self,
        futures: Mapping[K, concurrent.futures.Future[Any]],
        what: str = "admin request",
        *,
        group: bool = False,
    ) -> dict[K, Any]:
        """``gather`` for a caller already in a worker thread: blocks up to the timeout."""
        concurrent.futures.wait(futures.values(), timeout=self.config.timeout + 1)
        return self._answers(futures, what, group=group)

    def _answers(
        self, futures: Mapping[K, concurrent.futures.Future[Any]], what: str, *, group: bool
    ) -> dict[K, Any]:
        """Each future's result, or its BrokerError; those not done yet are given up on."""
        pending = {f for f in futures.values() if not f.done()}
        if pending and group:
            self.abandoned()
        answers: dict[K, Any] = {}
        for key, future in futures.items():
            if future in pending:
                future.cancel()
                answers[key] = self.translate(None, what)
                continue
            error = future.exception()
            if isinstance(error, KafkaException):
                answers[key] = self.translate(kafka_error_of(error), what)
            elif error is not None:
                answers[key] = BrokerError(f"{what} failed: {error}")
            else:
                answers[key] = future.result()
        return answers

    async def blocking(
        self,
        call: Callable[[], T],
        *,
        what: str,
        seconds: float = 0,
        executor: concurrent.futures.Executor | None = None,
    ) -> T:
        """Run a blocking librdkafka call in a worker thread, within ``seconds`` (+1 s).

        ``seconds`` defaults to the cluster's timeout; ``executor`` to the loop's.
        """
        loop = asyncio.get_running_loop()
        limit = (seconds or self.config.timeout) + 1
        try:
            async with asyncio.timeout(limit):
                return await loop.run_in_executor(executor, call)
        except KafkaException as exc:
            raise self.translate(kafka_error_of(exc), what) from None
        except TimeoutError:
            raise self.translate(None, what) from None
        except OSError as exc:
            raise BrokerUnavailable(
                f"{what} to {self.config.bootstrap_servers} failed: {exc}"
            ) from None

    def translate(self, error: KafkaError | None, what: str) -> BrokerError:
        return translate(
            error,
            what,
            servers=self.config.bootstrap_servers,
            timeout=self.config.timeout,
            background=self._last_error.get(),
        )
