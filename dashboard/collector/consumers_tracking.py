"""Consumer rows: first seen, last seen, and whether they are still there.

Runs in the collector after every sample (in a worker thread: it uses the
ORM). Keys of known rows are kept in memory, so a steady set of consumers
costs one ``UPDATE ... WHERE id IN (...)`` per 500 consumers per sample and no
reads; new consumers are inserted in bulk; consumers that vanished are marked
``gone`` once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction

from dashboard.models import Consumer
from dashboard.services.metrics.sample import SeenConsumer

log = logging.getLogger(__name__)

ACTIVE, GONE = "active", "gone"
BATCH = 500
Key = tuple[str, str, str]


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


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

    def record(self, seen: Iterable[SeenConsumer], now: datetime) -> None:
        known = self._load()
        present: set[int] = set()
        new: list[Consumer] = []
        changed: list[tuple[int, SeenConsumer]] = []
        handled: set[Key] = set()
        for c in seen:
            key = (c.kind, _clip(c.identity, 512), _clip(c.source, 512))
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
            known[(c.kind, _clip(c.identity, 512), _clip(c.source, 512))] = (pk, c.details)
        for ids in _chunks(sorted(self._active - present - new_ids)):
            Consumer.objects.filter(pk__in=ids).update(state=GONE)
        self._active = present | new_ids

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
