"""One batch of a bulk requeue: claim the rows, send them, settle the rows.

Claim: a conditional UPDATE turns the batch's ``pending``/``requeue_failed``
rows into ``requeuing`` with ``claim_job`` = the job, in one statement; a row
someone else requeued, discarded or is requeueing is left alone (skipped).
Rows this job claimed earlier and never settled (the worker died mid-batch)
are claimed again: they are sent again, so a letter is at least once at its
origin; a duplicate is within one batch and carries the original message id.

Send: grouped per cluster and vhost through ``brokers.<kind>.deadletters.requeue``
(one connection / producer per cluster and vhost for the whole job).

Settle: one transaction per batch. Sent rows become ``requeued`` (who, when,
requeue count + 1); unroutable ones ``requeue_failed`` with the reason; rows
whose send is unknown stay claimed and are returned for a retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brokers.base import BrokerError
from brokers.base.deadletters import Outcome, Result
from brokers.kafka import KafkaBroker
from brokers.kafka.deadletters.requeue import KafkaBatchSender, KafkaLetter
from brokers.rabbitmq.deadletters.requeue import AmqpBatchSender, AmqpLetter
from dashboard.core.clusters import get_cluster_config
from dashboard.core.params import InvalidInput
from dashboard.deadletters.common import User
from dashboard.deadletters.requeue import (
    CLAIMABLE,
    full_body,
    kafka_destination,
    kafka_letter,
    rabbitmq_destination,
)
from dashboard.models import Cluster, DeadLetter, DeadLetterBody

REQUEUING = DeadLetter.Status.REQUEUING
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterRef:
    slug: str
    kind: str


@dataclass(frozen=True)
class FullBody:
    data: bytes


@dataclass(slots=True)
class Row:
    """A claimed letter's fields for sending (a model instance costs about 3x more to read)."""

    pk: int
    cluster: ClusterRef
    vhost: str
    origin_exchange: str
    origin_routing_key: str
    origin_queue: str
    origin_topic: str
    origin_partition: int | None
    failure_details: Any
    key: bytes | None
    headers: Any
    properties: Any
    body: bytes
    body_truncated: bool
    full_body: FullBody | None = None


ROW_FIELDS = (
    "pk",
    "cluster_id",
    "vhost",
    "origin_exchange",
    "origin_routing_key",
    "origin_queue",
    "origin_topic",
    "origin_partition",
    "failure_details",
    "key",
    "headers",
    "properties",
    "body",
    "body_truncated",
    "status",
    "claim_job",
)


def claim_batch(job_id: int, ids: Sequence[int]) -> list[Row]:
    """Claim the batch's claimable rows for the job; return every row the job holds in it."""
    with transaction.atomic():
        DeadLetter.objects.filter(pk__in=ids, status__in=CLAIMABLE).update(
            status=REQUEUING, claim_job=job_id, claimed_at=timezone.now()
        )
        # Filtered here, not in SQL: by primary key alone the read is about half the cost.
        values = DeadLetter.objects.filter(pk__in=ids).order_by("pk").values_list(*ROW_FIELDS)
        mine = [v for v in values if v[-2] == REQUEUING and v[-1] == job_id]
        clusters = {
            c.pk: ClusterRef(c.slug, c.kind)
            for c in Cluster.objects.filter(pk__in={v[1] for v in mine})
        }
        rows = [
            Row(
                pk=v[0],
                cluster=clusters[v[1]],
                vhost=v[2],
                origin_exchange=v[3],
                origin_routing_key=v[4],
                origin_queue=v[5],
                origin_topic=v[6],
                origin_partition=v[7],
                failure_details=v[8],
                key=None if v[9] is None else bytes(v[9]),
                headers=v[10],
                properties=v[11],
                body=bytes(v[12]),
                body_truncated=v[13],
            )
            for v in mine
        ]
        truncated = [r.pk for r in rows if r.body_truncated]
        if truncated:
            bodies = DeadLetterBody.objects.in_bulk(truncated)
            for row in rows:
                if row.pk in bodies:
                    row.full_body = FullBody(bytes(bodies[row.pk].data))
        return rows


@dataclass
class Prepared:
    """The batch's rows, with what to send for each, or why it cannot be sent."""

    amqp: dict[tuple[str, str], list[tuple[Row, AmqpLetter]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    kafka: dict[str, list[tuple[Row, KafkaLetter]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    refused: list[tuple[Row, str]] = field(default_factory=list)


def prepare(letters: Sequence[Row]) -> Prepared:
    prepared = Prepared()
    for letter in letters:
        try:
            if letter.cluster.kind == "kafka":
                record = kafka_letter(letter, kafka_destination(letter, None))
                prepared.kafka[letter.cluster.slug].append((letter, record))
            else:
                exchange, routing_key = rabbitmq_destination(letter, None)
                props = {
                    k: v
                    for k, v in letter.properties.items()
                    if k not in ("exchange", "routing_key")
                }
                amqp = AmqpLetter(exchange, routing_key, full_body(letter), props, letter.headers)
                prepared.amqp[(letter.cluster.slug, letter.vhost)].append((letter, amqp))
        except InvalidInput as exc:
            prepared.refused.append((letter, str(exc)))
    return prepared


class Senders:
    """One sender per cluster (and vhost) for the whole job."""

    def __init__(self) -> None:
        self.amqp: dict[tuple[str, str], AmqpBatchSender] = {}
        self.kafka: dict[str, KafkaBatchSender] = {}

    async def send(self, prepared: Prepared) -> list[tuple[Row, Outcome]]:
        results: list[tuple[Row, Outcome]] = []
        for (slug, vhost), items in prepared.amqp.items():
            sender = self.amqp.get((slug, vhost))
            if sender is None:
                sender = self.amqp[(slug, vhost)] = AmqpBatchSender(get_cluster_config(slug), vhost)
            outcomes = await sender.send([amqp for _, amqp in items])
            results += zip((row for row, _ in items), outcomes, strict=True)
        for slug, records in prepared.kafka.items():
            producer = self.kafka.get(slug)
            if producer is None:
                config = get_cluster_config(slug)
                client = KafkaBroker(config).client_config()
                producer = await asyncio.to_thread(KafkaBatchSender, client, config.timeout)
                self.kafka[slug] = producer
            outcomes = await asyncio.to_thread(producer.send, [r for _, r in records])
            results += zip((row for row, _ in records), outcomes, strict=True)
        results += [(row, Outcome(Result.UNROUTABLE, why)) for row, why in prepared.refused]
        return results

    async def close(self) -> None:
        for sender in self.amqp.values():
            await sender.close()
        for producer in self.kafka.values():
            await asyncio.to_thread(producer.close)
        self.amqp.clear()
        self.kafka.clear()


def settle(job_id: int, results: Sequence[tuple[Row, Outcome]], user: User) -> list[int]:
    """Record the batch's outcomes in one transaction; return the ids still to send."""
    real = user if getattr(user, "is_authenticated", False) and user.pk else None
    sent = [row.pk for row, outcome in results if outcome.result == Result.SENT]
    failed: dict[str, list[int]] = defaultdict(list)
    unknown: list[int] = []
    for row, outcome in results:
        if outcome.result == Result.UNROUTABLE:
            failed[outcome.message].append(row.pk)
        elif outcome.result == Result.UNKNOWN:
            unknown.append(row.pk)
    mine = DeadLetter.objects.filter(status=REQUEUING, claim_job=job_id)
    with transaction.atomic():
        if sent:
            mine.filter(pk__in=sent).update(
                status=DeadLetter.Status.REQUEUED,
                acted_by=real,
                acted_at=timezone.now(),
                requeue_count=F("requeue_count") + 1,
                last_error="",
            )
        for message, ids in failed.items():
            mine.filter(pk__in=ids).update(
                status=DeadLetter.Status.REQUEUE_FAILED, last_error=message[:2000]
            )
    return unknown


def release(job_id: int, why: str) -> int:
    """Give back the rows the job holds unsettled (the job is ending without knowing)."""
    return DeadLetter.objects.filter(status=REQUEUING, claim_job=job_id).update(
        status=DeadLetter.Status.PENDING,
        last_error=f"{why} It may or may not have reached its origin; requeue it again if not.",
    )


def counts(job_id: int, total: int) -> dict[str, int]:
    """The job's exact counts, from the rows (they survive a worker that died)."""
    by_status: dict[str, int] = defaultdict(int)
    rows: Any = DeadLetter.objects.filter(claim_job=job_id).values_list("status")
    for (status,) in rows.iterator():
        by_status[status] += 1
    requeued = by_status[DeadLetter.Status.REQUEUED] + by_status[DeadLetter.Status.FAILED_AGAIN]
    failed = by_status[DeadLetter.Status.REQUEUE_FAILED]
    claimed = sum(by_status.values())
    return {
        "requeued": requeued,
        "failed": failed,
        "in_doubt": by_status[REQUEUING],
        "skipped": total - claimed,
        "claimed": claimed,
        "released": by_status[DeadLetter.Status.PENDING],
    }


def unclaim(job_id: int, ids: Sequence[int]) -> int:
    """Give back rows claimed ahead and never sent (the job was cancelled): pending again."""
    return DeadLetter.objects.filter(pk__in=ids, status=REQUEUING, claim_job=job_id).update(
        status=DeadLetter.Status.PENDING, claim_job=None
    )


async def send_batch(
    job_id: int, letters: list[Row], senders: Senders, user: User, retries: int
) -> None:
    """Send and settle claimed rows; retry unknown sends; BrokerError when they persist."""
    attempt = 0
    while letters:
        results = await senders.send(await asyncio.to_thread(prepare, letters))
        unknown = set(await sync_to_async(settle)(job_id, results, user))
        if not unknown:
            return
        attempt += 1
        reasons = {o.message for row, o in results if row.pk in unknown}
        log.warning(
            "job #%s: %d letters not confirmed (attempt %d): %s",
            job_id,
            len(unknown),
            attempt,
            "; ".join(sorted(reasons)[:3]),
        )
        if attempt > retries:
            raise BrokerError(
                f"{len(unknown)} letters could not be sent after {retries} retries:"
                f" {'; '.join(sorted(reasons)[:3])}"
            )
        await asyncio.sleep(min(2**attempt * 0.5, 10))
        letters = [row for row in letters if row.pk in unknown]
