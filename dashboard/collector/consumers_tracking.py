"""Consumer rows: first seen, last seen, and whether they are still there.

Runs in the collector after every sample (in a worker thread: it uses the
ORM). Keys of known rows are kept in memory, so a steady set of consumers
costs one ``UPDATE ... WHERE id IN (...)`` per 500 consumers per sample and no
reads; new consumers are inserted in bulk; consumers that vanished are marked
``gone`` once.

It also runs the collector's ``celery`` loop: Celery workers on brokers the
metrics sampling cannot see (Redis), asked every ``MQB_METRICS_CELERY_INTERVAL``
seconds with Celery's control broadcast (in a thread, with a timeout). A
worker that misses ``CELERY_MISSES_BEFORE_GONE`` answers in a row is gone: a
solo-pool worker busy with a long task does not answer until it is done. After
each answer stored, the alert rules on gone workers are evaluated for the broker's
bookkeeping cluster (``alerts.hook.after_workers``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction

from brokers.base import BrokerError
from brokers.base.metrics import SeenConsumer
from dashboard.alerts.hook import after_workers
from dashboard.core.stopping import until_stopped
from dashboard.metrics.celery_workers import (
    CeleryBrokerSampler,
    broker_cluster_row,
    broker_slug,
    celery_broker_urls,
)
from dashboard.models import Consumer

log = logging.getLogger(__name__)

ACTIVE, GONE = "active", "gone"
BATCH = 500
Key = tuple[str, str, str]
CELERY_MISSES_BEFORE_GONE = 3


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _key(c: SeenConsumer) -> Key:
    return (c.kind, _clip(c.identity, 512), _clip(c.source, 512))


class ConsumerTracker:
    def __init__(self, cluster_id: int) -> None:
        self.cluster_id = cluster_id
        self._rows: dict[Key, tuple[int, dict[str, object]]] | None = None
        self._active: set[int] = set()

    def _load(self) -> dict[Key, tuple[int, dict[str, object]]]:
        if self._rows is None:
            rows = Consumer.objects.filter(cluster_id=self.cluster_id).values_list(
                "pk", "kind", "identity", "source", "state", "details"
            )
            self._rows = {}
            for pk, kind, identity, source, state, details in rows:
                self._rows[(kind, identity, source)] = (pk, details)
                if state == ACTIVE:
                    self._active.add(pk)
        return self._rows

    def record(
        self, seen: Iterable[SeenConsumer], now: datetime, *, missing: Iterable[SeenConsumer] = ()
    ) -> None:
        """Seen now: insert or touch. ``missing``: not seen, but not gone yet either."""
        known = self._load()
        present: set[int] = set()
        new: list[Consumer] = []
        changed: list[tuple[int, SeenConsumer]] = []
        handled: set[Key] = set()
        for c in seen:
            key = _key(c)
            if key in handled:
                continue  # a worker consuming one queue on two channels
            handled.add(key)
            found = known.get(key)
            if found is None:
                new.append(
                    Consumer(
                        cluster_id=self.cluster_id,
                        kind=c.kind,
                        identity=key[1],
                        source=key[2],
                        client=_clip(c.client, 512),
                        host=_clip(c.host, 255),
                        state=ACTIVE,
                        details=c.details,
                        first_seen=now,
                        last_seen=now,
                    )
                )
            else:
                present.add(found[0])
                if found[1] != c.details:
                    changed.append((found[0], c))
        new_ids = self._insert(new) if new else set()
        for ids in _chunks(sorted(present)):
            Consumer.objects.filter(pk__in=ids).update(last_seen=now, state=ACTIVE)
        for pk, c in changed:
            Consumer.objects.filter(pk=pk).update(details=c.details, client=_clip(c.client, 512))
            known[_key(c)] = (pk, c.details)
        kept = {known[k][0] for k in map(_key, missing) if k in known} & self._active
        for ids in _chunks(sorted(self._active - present - new_ids - kept)):
            Consumer.objects.filter(pk__in=ids).update(state=GONE)
        self._active = present | new_ids | kept

    def _insert(self, new: list[Consumer]) -> set[int]:
        try:
            with transaction.atomic():
                created = Consumer.objects.bulk_create(new, batch_size=BATCH)
        except IntegrityError:
            # Someone else (a second collector) inserted one of them: start over
            # from the table next time.
            log.warning("consumer rows changed under the collector; reloading them")
            self._rows = None
            self._active.clear()
            return set()
        known = self._load()
        for row in created:
            known[(row.kind, row.identity, row.source)] = (row.pk, row.details)
        return {row.pk for row in created}


# -- Celery workers on brokers the sampling cannot see -----------------------------


class CeleryWorkersLoop:
    """One Celery broker: ask its workers, record them, remember who missed an answer."""

    def __init__(self, url: str) -> None:
        self.sampler = CeleryBrokerSampler(url)
        self.tracker: ConsumerTracker | None = None
        self.misses: dict[Key, tuple[int, SeenConsumer]] = {}
        self.ok: bool | None = None
        # The broadcast waits its whole timeout; connecting may take as long again.
        self.deadline = 2 * settings.MQB_METRICS_CELERY_TIMEOUT + 5
        self._asking: asyncio.Future[tuple[SeenConsumer, ...]] | None = None

    async def once(self) -> None:
        if self._asking is not None and self._asking.done() and not self._asking.cancelled():
            self._asking.exception()  # a late answer to a call already given up on
        if self._asking is None or self._asking.done():
            # A thread cannot be cancelled: one that outlived its deadline is
            # waited for instead of starting a second one beside it.
            self._asking = asyncio.ensure_future(asyncio.to_thread(self.sampler.sample))
        try:
            async with asyncio.timeout(self.deadline):
                seen = await asyncio.shield(self._asking)
        except (BrokerError, TimeoutError) as exc:
            if self.ok is not False:
                message = exc.message if isinstance(exc, BrokerError) else "no answer in time"
                log.warning("%s: Celery workers not asked: %s", self.sampler.label, message)
            self.ok = False
            return  # who is there is unknown: nobody is marked gone
        self.ok = True
        try:
            await sync_to_async(self._record)(seen, datetime.now(UTC))
        except DatabaseError as exc:
            log.warning("%s: Celery workers not stored: %s", self.sampler.label, exc)
            self.tracker = None
            await sync_to_async(close_old_connections)()
            return
        if self.tracker is not None:
            await after_workers(self.tracker.cluster_id, broker_slug(self.sampler.url))

    def _record(self, seen: tuple[SeenConsumer, ...], now: datetime) -> None:
        if self.tracker is None:
            self.tracker = ConsumerTracker(broker_cluster_row(self.sampler.url).pk)
        present = {_key(c) for c in seen}
        misses = {k: (n + 1, c) for k, (n, c) in self.misses.items() if k not in present}
        self.misses = {k: v for k, v in misses.items() if v[0] < CELERY_MISSES_BEFORE_GONE}
        missing = [c for _, c in self.misses.values()]
        with transaction.atomic():
            self.tracker.record(seen, now, missing=missing)
        self.misses.update({_key(c): (0, c) for c in seen})


async def run_celery(stop: asyncio.Event, interval: float) -> None:
    """The ``celery`` loop: every broker of ``MQB_METRICS_CELERY_BROKERS``, side by side."""
    loops = [CeleryWorkersLoop(url) for url in celery_broker_urls()]
    every = settings.MQB_METRICS_CELERY_INTERVAL
    if loops:
        log.info("celery: asking the workers of %d broker(s) every %g s", len(loops), every)
    try:
        while not stop.is_set():
            started = asyncio.get_running_loop().time()
            await asyncio.gather(*(loop.once() for loop in loops))
            left = every - (asyncio.get_running_loop().time() - started)
            await until_stopped(stop, max(0.1, left) if loops else None)
    finally:
        for loop in loops:
            loop.sampler.close()
