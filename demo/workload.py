"""``python -m demo.workload``: steady, realistic traffic on RabbitMQ, Celery and Kafka.

The dashboard is only as convincing as the traffic it watches, so this
reproduces the production patterns it must handle: topic routing, a work queue
with prefetch-1 workers, Celery task messages, a keyed Kafka topic with a
consumer group, and a share of failures on every path so both brokers keep
accumulating dead letters (``dlq`` and ``user-events-dlq``).

The RabbitMQ side runs on the asyncio loop; Kafka and Celery publishing block,
so they run in threads. SIGINT or SIGTERM stops everything within seconds
(exit 0). A broker that is down gets one log line per retry, with backoff.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from demo.common import Stats
from demo.topology import (
    DEFAULT_AMQP_URL,
    DEFAULT_BOOTSTRAP,
    KAFKA_DLQ_PARTITIONS,
    KAFKA_USER_EVENT_PARTITIONS,
    Names,
)

log = logging.getLogger("demo.workload")
CELERY_SHARE = 0.2  # of the RabbitMQ rate, when Celery is on
TASK_SHARE = 0.35  # of the aio-pika publishes, the share that goes to task-queue
SUMMARY_EVERY = 30.0


@dataclass(frozen=True)
class Options:
    amqp_url: str
    bootstrap_servers: str
    names: Names
    rate: float
    fail_share: float
    duration: float | None
    kafka: bool
    rabbitmq: bool
    celery: bool


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> Options:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m demo.workload", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--amqp-url",
        default=env("DEMO_AMQP_URL", DEFAULT_AMQP_URL),
        help="AMQP URL; its path is the vhost (env DEMO_AMQP_URL)",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=env("DEMO_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP),
        help="Kafka bootstrap servers (env DEMO_KAFKA_BOOTSTRAP)",
    )
    parser.add_argument(
        "--prefix",
        default=env("DEMO_PREFIX", ""),
        help="prepended to every exchange, queue, topic and group (env DEMO_PREFIX)",
    )
    parser.add_argument(
        "--rate",
        type=_positive,
        default=_positive(env("DEMO_RATE", "5")),
        help="messages per second per broker (env DEMO_RATE, default 5)",
    )
    parser.add_argument(
        "--fail-share",
        type=_share,
        default=_share(env("DEMO_FAIL_SHARE", "0.2")),
        help="share of messages that fail and dead-letter (default 0.2)",
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        default=None,
        help="stop after this many seconds (default: run until SIGINT/SIGTERM)",
    )
    parser.add_argument("--no-kafka", action="store_true", help="leave Kafka alone")
    parser.add_argument("--no-rabbitmq", action="store_true", help="leave RabbitMQ alone")
    parser.add_argument("--no-celery", action="store_true", help="send no Celery tasks")
    args = parser.parse_args(argv)
    return Options(
        amqp_url=args.amqp_url,
        bootstrap_servers=args.bootstrap_servers,
        names=Names(args.prefix),
        rate=args.rate,
        fail_share=args.fail_share,
        duration=args.duration,
        kafka=not args.no_kafka,
        rabbitmq=not args.no_rabbitmq,
        celery=not args.no_celery,
    )


def describe(options: Options) -> str:
    """The one line printed at start: what exists where, and at which rate."""
    n = options.names
    parts = []
    if options.rabbitmq or options.celery:
        vhost = unquote(urlsplit(options.amqp_url).path[1:]) or "/"
        queues = [n.user_events_queue, n.task_queue, n.dlq] if options.rabbitmq else [n.dlq]
        if options.celery:
            queues.append(n.celery_queue)
        exchanges = f"{n.events_exchange}(topic) {n.dlx}(direct)" if options.rabbitmq else n.dlx
        parts.append(f"rabbitmq vhost {vhost}: exchanges {exchanges}, queues {' '.join(queues)}")
    if options.kafka:
        parts.append(
            f"kafka: topics {n.kafka_user_events}({KAFKA_USER_EVENT_PARTITIONS}) "
            f"{n.kafka_dlq}({KAFKA_DLQ_PARTITIONS}), group {n.kafka_group}"
        )
    rates = f"{options.rate:g} msg/s per broker, fail-share {options.fail_share:g}"
    return f"demo workload: {'; '.join(parts) or 'nothing enabled'}; {rates}"


def _start_threads(options: Options, stats: Stats, stop: threading.Event) -> list[threading.Thread]:
    threads = []
    if options.kafka:
        from demo.kafka_side import KafkaSettings, KafkaSide

        kafka = KafkaSide(
            KafkaSettings(
                options.bootstrap_servers, options.names, options.rate, options.fail_share
            ),
            stats,
            stop,
        )
        threads.append(threading.Thread(target=kafka.run, name="kafka", daemon=True))
    if options.celery:
        from demo.celery_side import CelerySide

        rate = options.rate * (CELERY_SHARE if options.rabbitmq else 1.0)
        celery = CelerySide(options.amqp_url, options.names, rate, options.fail_share, stats, stop)
        threads.append(threading.Thread(target=celery.run, name="celery", daemon=True))
    for thread in threads:
        thread.start()
    return threads


async def run(options: Options) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    stats = Stats()
    thread_stop = threading.Event()
    threads = _start_threads(options, stats, thread_stop)
    tasks: list[asyncio.Task[None]] = []
    if options.rabbitmq:
        from demo.rabbitmq_side import RabbitSettings, RabbitSide

        rate = options.rate * ((1 - CELERY_SHARE) if options.celery else 1.0)
        side = RabbitSide(
            RabbitSettings(options.amqp_url, options.names, rate, TASK_SHARE, options.fail_share),
            stats,
        )
        tasks.append(asyncio.create_task(side.run(stop), name="rabbitmq"))
    tasks.append(asyncio.create_task(_summarise(stats, stop), name="summary"))
    try:
        async with asyncio.timeout(options.duration):
            await stop.wait()
    except TimeoutError:
        stop.set()
    log.info("stopping")
    thread_stop.set()
    # The asyncio side and the threads wind down at the same time; neither may hold up exit.
    (done, pending), _ = await asyncio.gather(
        asyncio.wait(tasks, timeout=4), asyncio.to_thread(_join, threads, 4.0)
    )
    for task in pending:
        task.cancel()
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with %r", task.get_name(), task.exception())
    log.info("stopped: %s", stats.summary())
    return 0


def _join(threads: list[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("%s did not stop in time; leaving it", thread.name)


async def _summarise(stats: Stats, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SUMMARY_EVERY):
                await stop.wait()
        if not stop.is_set():
            log.info("so far: %s", stats.summary())


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiormq logs every failed connect at ERROR; RabbitSide already says it once, with backoff.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    print(describe(options), flush=True)
    return asyncio.run(run(options))


if __name__ == "__main__":
    sys.exit(main())
