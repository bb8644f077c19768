"""How the Kafka adapter calls librdkafka: in worker threads, under one deadline each.

A mixin of :class:`brokers.kafka.KafkaBroker`. Blocking calls run in an
executor with a timeout; admin futures are awaited with ``result`` (one) or
``gather`` (many, waited for in one worker thread); every librdkafka error
becomes a :class:`BrokerError` through ``translate``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from brokers.base import BrokerError, BrokerUnavailable, ClusterConfig
from brokers.kafka.errors import LastError, kafka_error_of, translate

T = TypeVar("T")
K = TypeVar("K")


class KafkaCalls:
    config: ClusterConfig
    _last_error: LastError

    async def result(self, future: concurrent.futures.Future[T], what: str) -> T:
        """Await one admin future within the timeout; raise a BrokerError on failure."""
        try:
            async with asyncio.timeout(self.config.timeout + 1):
                return await asyncio.wrap_future(future)
        except KafkaException as exc:
            raise self.translate(kafka_error_of(exc), what) from None
        except TimeoutError:
            future.cancel()
            raise self.translate(None, what) from None

    async def gather(
        self, futures: Mapping[K, concurrent.futures.Future[Any]], what: str = "admin request"
    ) -> dict[K, Any]:
        """Await many admin futures under one deadline; a failed one maps to its BrokerError.

        The waiting happens in one worker thread: wrapping each future for the
        event loop costs a loop wake-up per future, and one batched ListOffsets
        call alone yields a future per partition (hundreds on a page).
        """
        if not futures:
            return {}
        loop = asyncio.get_running_loop()
        limit = self.config.timeout + 1
        pending: set[concurrent.futures.Future[Any]] = set()
        try:
            async with asyncio.timeout(limit + 1):
                _, pending = await loop.run_in_executor(
                    None, lambda: concurrent.futures.wait(futures.values(), timeout=limit)
                )
        except TimeoutError:
            pending = {f for f in futures.values() if not f.done()}
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
