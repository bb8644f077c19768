"""Publishes real Celery task messages with ``apply_async`` at a steady rate.

Kombu's publishing blocks (and retries on its own when the broker is away),
so this runs in a thread. The queue, ``dlx`` and ``dlq`` are declared first,
so tasks published before any worker starts wait in the queue instead of
vanishing into an exchange with no binding.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from kombu.exceptions import KombuError, OperationalError

from demo import payloads
from demo.celery_app import declare_topology, make_app
from demo.common import Backoff, Pacer, Stats
from demo.topology import RESIZE_TASK, Names

log = logging.getLogger("demo.celery")
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


class CelerySide:
    def __init__(
        self,
        amqp_url: str,
        names: Names,
        rate: float,
        fail_share: float,
        stats: Stats,
        stop: threading.Event,
    ) -> None:
        self.app = make_app(amqp_url, names.prefix)
        self.names = names
        self.rate = rate
        self.fail_share = fail_share
        self.stats = stats
        self.stop = stop

    def run(self) -> None:
        """Thread body: connect and declare, then publish until ``stop``; errors back off."""
        task = self.app.tasks[RESIZE_TASK]
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                # One connection of our own: the app's producer pool never closes its sockets.
                with self.app.connection_for_write() as connection:
                    connection.connect()  # one attempt; the backoff is ours
                    declare_topology(self.app, self.names, connection)
                    log.info(
                        "Celery: declared %s; sending %s", self.names.celery_queue, RESIZE_TASK
                    )
                    backoff.reset()
                    self._publish(task, connection.Producer())
            except (OperationalError, KombuError, OSError) as exc:
                delay = backoff.next()
                log.error("Celery broker: %s; retrying in %.0f s", str(exc).splitlines()[0], delay)
                self.stop.wait(delay)

    def _publish(self, task: Any, producer: Any) -> None:
        rng = random.Random()
        pacer = Pacer(self.rate)
        while not self.stop.wait(pacer.delay()):
            args, kwargs = payloads.image_job(rng, self.fail_share)
            task.apply_async(args, kwargs, producer=producer, retry=True, retry_policy=RETRY_POLICY)
            self.stats.incr("celery_sent")
