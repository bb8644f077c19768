"""One batch of a bulk requeue: claim the rows, send them, settle the rows.

Claim: a conditional UPDATE turns the batch's ``pending``/``requeue_failed``
rows into ``requeuing`` with ``claim_job`` = the job, in one statement; a row
someone else requeued, discarded or is requeueing is left alone (skipped).
Rows this job claimed earlier and never settled (the worker died mid-batch)
are claimed again: they are sent again, so a letter is at least once at its
origin; a duplicate is within one batch and carries the original message id.

Send: each row becomes its kind's outgoing letter (to its origin, or where a
redirect of ``redirects`` sends it), grouped per cluster and
address (RabbitMQ: the vhost) and sent through the kind's one sender (one
connection or producer per cluster and address for the whole job).

Settle: one transaction per batch. Sent rows become ``requeued`` (who, when,
requeue count + 1); unroutable ones ``requeue_failed`` with the reason; rows
whose send is unknown stay claimed and are returned for a retry.

That is the SQLite path (``claim_batch``, ``settle``). On PostgreSQL,
``SharedClaims`` does the same set-based, with the batch's rows locked from
claim to settle, so that several runners can share one job (below).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brokers.base import BrokerError
from brokers.base.deadletters import (
    DeadLetters,
    InvalidLetter,
    LetterSender,
    Outcome,
    OutgoingLetter,
    Result,
)
from brokers.base.validate import InvalidValue
from brokers.registry import require
from dashboard.core.clusters import get_cluster_config
from dashboard.deadletters.common import User
from dashboard.deadletters.redirects import RedirectTable
from dashboard.deadletters.requeue import CLAIMABLE, stored_letter
from dashboard.models import Cluster, DeadLetter, DeadLetterBody

REQUEUING = DeadLetter.Status.REQUEUING
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterRef:
    slug: str


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

    @classmethod
    def of(cls, v: Sequence[Any], cluster: ClusterRef, full_body: bytes | None = None) -> Row:
        """The row from its first 14 values in ``ROW_FIELDS`` order (the cluster given)."""
        return cls(
            pk=v[0],
            cluster=cluster,
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
            full_body=None if full_body is None else FullBody(bytes(full_body)),
        )


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
            c.pk: ClusterRef(c.slug) for c in Cluster.objects.filter(pk__in={v[1] for v in mine})
        }
        rows = [Row.of(v, clusters[v[1]]) for v in mine]
        truncated = [r.pk for r in rows if r.body_truncated]
        if truncated:
            bodies = DeadLetterBody.objects.in_bulk(truncated)
            for row in rows:
                if row.pk in bodies:
                    row.full_body = FullBody(bytes(bodies[row.pk].data))
        return rows


@dataclass
class Prepared:
    """The batch's letters by the sender that takes them (cluster and the kind's address),
    or why a letter cannot be sent."""

    groups: dict[tuple[str, str], list[tuple[Row, OutgoingLetter]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    refused: list[tuple[Row, str]] = field(default_factory=list)


def prepare(letters: Sequence[Row], redirects: RedirectTable | None = None) -> Prepared:
    """Each letter's outgoing message, to its origin or where a redirect sends it."""
    prepared = Prepared()
    kinds: dict[str, DeadLetters] = {}
    table = redirects or RedirectTable()
    for letter in letters:
        slug = letter.cluster.slug
        if slug not in kinds:
            config = get_cluster_config(slug)
            kinds[slug] = require(config, lambda k: k.deadletters, "dead-letter queues")
        deadletters = kinds[slug]
        try:
            stored = stored_letter(letter)
            target = table.resolve(deadletters, slug, stored).target
            message = deadletters.outgoing(stored, target, None)
        except InvalidLetter as exc:
            prepared.refused.append((letter, str(exc)))
        except InvalidValue as exc:
            prepared.refused.append((letter, f"not sent: {exc.message}"))
        else:
            prepared.groups[(slug, message.address)].append((letter, message))
    return prepared


class Senders:
    """One sender per cluster and address (a vhost, or none) for the whole job."""

    def __init__(self) -> None:
        self.senders: dict[tuple[str, str], LetterSender] = {}

    async def send(self, prepared: Prepared) -> list[tuple[Row, Outcome]]:
        results: list[tuple[Row, Outcome]] = []
        for (slug, address), items in prepared.groups.items():
            sender = self.senders.get((slug, address))
            if sender is None:
                config = get_cluster_config(slug)
                deadletters = require(config, lambda k: k.deadletters, "dead-letter queues")
                sender = self.senders[(slug, address)] = deadletters.sender(config, address)
            outcomes = await sender.send([message for _, message in items])
            results += zip((row for row, _ in items), outcomes, strict=True)
        results += [(row, Outcome(Result.UNROUTABLE, why)) for row, why in prepared.refused]
        return results

    async def close(self) -> None:
        senders = list(self.senders.values())
        self.senders.clear()
        for sender in senders:
            await sender.close()


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
    redirects = await sync_to_async(RedirectTable.load)({row.cluster.slug for row in letters})
    while letters:
        results = await senders.send(await asyncio.to_thread(prepare, letters, redirects))
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


# -- PostgreSQL: set-based claims that several runners share ---------------------------

TALLY_EVERY = 1.0
"""Seconds between two additions of a connection's settled letters to the job's tally."""
LOCK_BASE = 0x6D71_6272_0000_0000
"""Advisory lock keys of shared jobs: this plus the job id (a runner holds it shared)."""

_CLAIM = """
SELECT d.id, c.slug, d.vhost, d.origin_exchange, d.origin_routing_key, d.origin_queue,
    d.origin_topic, d.origin_partition,
    -- Of the failure details a send reads only whether the letter is a task (a truthy
    -- "task", as Python sees it): one boolean instead of the whole JSON parsed.
    COALESCE(d.failure_details -> 'task' NOT IN (
        'null'::jsonb, 'false'::jsonb, '0'::jsonb, '""'::jsonb, '{}'::jsonb, '[]'::jsonb), false),
    d.key, d.headers, d.properties,
    d.body, d.body_truncated,
    (SELECT b.data FROM dashboard_deadletterbody AS b
     WHERE d.body_truncated AND b.dead_letter_id = d.id)
FROM dashboard_deadletter AS d JOIN dashboard_cluster AS c ON c.id = d.cluster_id
WHERE d.id BETWEEN %(low)s AND %(high)s AND d.id = ANY(%(ids)s::bigint[])
  AND d.status = ANY(%(claimable)s::text[]) AND d.claim_job IS DISTINCT FROM %(job)s::bigint
ORDER BY d.id LIMIT %(n)s
FOR UPDATE OF d SKIP LOCKED
"""

_SETTLE = """
UPDATE dashboard_deadletter AS d
SET status = CASE WHEN r.id IS NULL THEN %(requeued)s ELSE %(failed)s END,
    last_error = COALESCE(r.error, ''),
    claim_job = %(job)s::bigint,
    claimed_at = %(now)s,
    acted_by_id = CASE WHEN r.id IS NULL THEN %(user)s ELSE d.acted_by_id END,
    acted_at = CASE WHEN r.id IS NULL THEN %(now)s ELSE d.acted_at END,
    requeue_count = d.requeue_count + CASE WHEN r.id IS NULL THEN 1 ELSE 0 END
FROM unnest(%(ids)s::bigint[]) AS u(id)
LEFT JOIN unnest(%(refused)s::bigint[], %(errors)s::text[]) AS r(id, error) ON r.id = u.id
WHERE d.id = u.id
"""


def id_array(ids: Sequence[int]) -> str:
    """``ids`` as a PostgreSQL array literal, for a ``%s::bigint[]`` parameter.

    A claim names the ids of its window, thousands each time: the literal is
    made in one join, where the driver's list adapter handles each item.
    """
    return "{" + ",".join(map(str, ids)) + "}"


_TALLY = """
UPDATE dashboard_job
SET result = jsonb_set(
    COALESCE(result, '{}'::jsonb), '{runners}',
    COALESCE(result -> 'runners', '{}'::jsonb)
      || jsonb_build_object(%(who)s::text,
                            COALESCE((result -> 'runners' ->> %(who)s::text)::int, 0) + %(n)s))
WHERE id = %(job)s::bigint
"""

_TODO = """
SELECT count(*) FROM dashboard_deadletter
WHERE id BETWEEN %(low)s AND %(high)s AND id = ANY(%(ids)s::bigint[])
  AND status = ANY(%(claimable)s::text[]) AND claim_job IS DISTINCT FROM %(job)s::bigint
"""

# The first to-do row, waiting for the transaction that holds it: it ends when that
# runner's batch commits (the row is settled: the next one is tried) or rolls back.
_HELD = """
SELECT id FROM dashboard_deadletter
WHERE id BETWEEN %(low)s AND %(high)s AND id = ANY(%(ids)s::bigint[])
  AND status = ANY(%(claimable)s::text[]) AND claim_job IS DISTINCT FROM %(job)s::bigint
ORDER BY id LIMIT 1
FOR UPDATE
"""


def set_based() -> bool:
    """Whether bulk requeues use the shared, set-based claims (PostgreSQL)."""
    from django.db import connection

    return connection.vendor == "postgresql"


class SharedClaims:
    """A runner's own PostgreSQL connection for claiming, settling and counting a job's rows.

    A batch is claimed, sent and settled in one transaction. The claim is one
    ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n`` that reads the rows to send
    and locks them: other runners skip them until the settle (one ``UPDATE …
    FROM unnest(…)`` giving each row its status, error and the job) commits.
    The claim writes nothing: a ``requeuing`` status written in the same
    transaction would never be seen by anyone, and it would cost a second
    update of every row and its many indexes (the batch then ran at about half
    the rate). A runner that dies mid-batch loses its connection: the
    transaction rolls back and its rows are as they were (pending) and unlocked
    again, for the next claim of any runner. While it runs, a runner holds the
    job's advisory lock shared; the job's lead waits for the lock exclusively
    to know that no other runner is still working before the verdict.
    """

    def __init__(self, job_id: int, who: str) -> None:
        self.job_id = job_id
        self.who = who
        self.conn: Any = None
        self.untallied = 0
        # The first commit tallies at once: the job shows each runner from its first batch.
        self.tallied_at = time.monotonic() - TALLY_EVERY

    async def open(self, *, shared: bool = True) -> bool:
        """Connect; with ``shared``, take the job's lock shared (False: the lead is finishing)."""
        import psycopg
        from django.db import connection
        from psycopg.types.json import set_json_loads

        from dashboard.core.jsonb import load_json

        params = {
            k: v
            for k, v in connection.get_connection_params().items()
            if k not in ("cursor_factory", "context", "prepare_threshold")
        }
        self.conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        # Each claimed letter's headers and properties: orjson, the same values.
        set_json_loads(load_json, self.conn)
        # A batch's commit does not wait for its WAL to reach the disk. What a crash of
        # PostgreSQL itself (not of this worker) could then lose is the last fraction of a
        # second of settles: those letters are pending again, and a requeue sends them
        # again with their message ids, as after a worker's crash mid-batch (at least
        # once). Nothing captured depends on it: capture commits durably before its acks.
        await self.conn.execute("SET synchronous_commit = off")
        if not shared:
            return True
        got = await self._one("SELECT pg_try_advisory_lock_shared(%s)", (LOCK_BASE + self.job_id,))
        return bool(got)

    async def close(self) -> None:
        if self.conn is not None:
            if not self.conn.closed and self.conn.info.transaction_status == 0:
                await self.tally()  # idle: every batch committed or rolled back
            await self.conn.close()
            self.conn = None

    async def _one(self, sql: str, params: Any) -> Any:
        cursor = await self.conn.execute(sql, params)
        row = await cursor.fetchone()
        return None if row is None else row[0]

    async def wait_alone(self) -> None:
        """Wait until no other runner holds the job's lock (a session's own never conflict)."""
        key = LOCK_BASE + self.job_id
        await self._one("SELECT pg_advisory_lock(%s)", (key,))
        await self._one("SELECT pg_advisory_unlock(%s)", (key,))

    async def claim(self, ids: Sequence[int], size: int) -> list[Row]:
        """Begin a transaction and claim up to ``size`` to-do rows among ``ids``, lowest first.

        To do: pending or requeue_failed, and not settled by this job before.
        An empty claim ends the transaction at once.
        """
        if not ids:
            return []
        await self.conn.execute("BEGIN")
        cursor = await self.conn.execute(
            _CLAIM,
            {
                # The range lets the primary key answer whatever the planner's statistics.
                "low": min(ids),
                "high": max(ids),
                "ids": id_array(ids),
                "claimable": list(CLAIMABLE),
                "job": self.job_id,
                "n": size,
            },
        )
        values = await cursor.fetchall()
        if not values:
            await self.conn.execute("COMMIT")
            return []
        values.sort(key=lambda v: v[0])
        return [
            Row.of((*v[:8], {"task": True} if v[8] else {}, *v[9:]), ClusterRef(v[1]), v[14])
            for v in values
        ]

    async def settle(self, results: Sequence[tuple[Row, Outcome]], user: User) -> list[int]:
        """Record the sent and refused rows (one statement); return the ids still unknown."""
        real = user.pk if getattr(user, "is_authenticated", False) and user.pk else None
        ids: list[int] = []
        refused: list[int] = []
        errors: list[str] = []
        unknown: list[int] = []
        for row, outcome in results:
            if outcome.result == Result.SENT:
                ids.append(row.pk)
            elif outcome.result == Result.UNROUTABLE:
                ids.append(row.pk)
                refused.append(row.pk)
                errors.append(outcome.message[:2000])
            else:
                unknown.append(row.pk)
        if ids:
            await self.conn.execute(
                _SETTLE,
                {
                    "ids": id_array(ids),
                    "refused": refused,
                    "errors": errors,
                    "requeued": DeadLetter.Status.REQUEUED,
                    "failed": DeadLetter.Status.REQUEUE_FAILED,
                    "user": real,
                    "now": timezone.now(),
                    "job": self.job_id,
                },
            )
            self.untallied += len(ids)
        return unknown

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")
        if time.monotonic() - self.tallied_at >= TALLY_EVERY:
            await self.tally()

    async def tally(self) -> None:
        """Add the letters this connection settled since the last tally to the job's
        ``result["runners"]`` (after the commit: the job's row is not held by a batch)."""
        if self.untallied:
            await self.conn.execute(
                _TALLY, {"who": self.who, "n": self.untallied, "job": self.job_id}
            )
            self.untallied = 0
        self.tallied_at = time.monotonic()

    async def rollback(self) -> None:
        await self.conn.execute("ROLLBACK")

    async def release(self, ids: Sequence[int], why: str) -> int:
        """Give back the batch's unknown rows (pending, the job's, with why); commit the batch."""
        cursor = await self.conn.execute(
            "UPDATE dashboard_deadletter SET status = %s, last_error = %s, claim_job = %s::bigint"
            " WHERE id = ANY(%s::bigint[])",
            (
                DeadLetter.Status.PENDING,
                f"{why} It may or may not have reached its origin; requeue it again if not.",
                self.job_id,
                list(ids),
            ),
        )
        await self.commit()
        return int(cursor.rowcount)

    async def todo(self, ids: Sequence[int]) -> int:
        """How many of ``ids`` are still to do (rows other runners hold count: not yet settled)."""
        if not ids:
            return 0
        found = await self._one(
            _TODO,
            {
                "low": min(ids),
                "high": max(ids),
                "ids": id_array(ids),
                "claimable": list(CLAIMABLE),
                "job": self.job_id,
            },
        )
        return int(found)

    async def wait_held(self, ids: Sequence[int], seconds: float) -> None:
        """Wait until a to-do row among ``ids`` that another runner holds is free (its batch
        committed or rolled back), at most about ``seconds``; lock nothing after."""
        import psycopg

        if not ids:
            return
        await self.conn.execute("BEGIN")
        try:
            await self.conn.execute(f"SET LOCAL lock_timeout = {max(1, int(seconds * 1000))}")
            await self.conn.execute(
                _HELD,
                {
                    "low": min(ids),
                    "high": max(ids),
                    "ids": id_array(ids),
                    "claimable": list(CLAIMABLE),
                    "job": self.job_id,
                },
            )
        except psycopg.errors.LockNotAvailable:
            pass
        finally:
            await self.conn.execute("ROLLBACK")

    async def settled(self) -> tuple[int, int]:
        """(settled, failed): the job's rows settled so far, the refused among them."""
        cursor = await self.conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = %s) FROM dashboard_deadletter"
            " WHERE claim_job = %s::bigint AND status <> %s",
            (DeadLetter.Status.REQUEUE_FAILED, self.job_id, REQUEUING),
        )
        row = await cursor.fetchone()
        return int(row[0]), int(row[1])


async def send_shared(
    claims: SharedClaims,
    letters: list[Row],
    senders: Senders,
    user: User,
    retries: int,
    *,
    give_back: bool,
) -> None:
    """Send and settle a claimed batch in its transaction and commit; retry unknown sends.

    BrokerError when they persist. ``give_back`` (the job ends): the batch's
    settled rows are committed and its unknown ones are pending again, marked
    in doubt; otherwise the whole batch is rolled back, to do again by another
    runner (its sent letters are sent again, with their message ids).
    """
    attempt = 0
    redirects = await sync_to_async(RedirectTable.load)({row.cluster.slug for row in letters})
    while True:
        results = await senders.send(await asyncio.to_thread(prepare, letters, redirects))
        unknown = set(await claims.settle(results, user))
        if not unknown:
            await claims.commit()
            return
        attempt += 1
        reasons = {o.message for row, o in results if row.pk in unknown}
        log.warning(
            "job #%s: %d letters not confirmed (attempt %d): %s",
            claims.job_id,
            len(unknown),
            attempt,
            "; ".join(sorted(reasons)[:3]),
        )
        if attempt > retries:
            message = (
                f"{len(unknown)} letters could not be sent after {retries} retries:"
                f" {'; '.join(sorted(reasons)[:3])}"
            )
            if give_back:
                await claims.release(
                    sorted(unknown), f"Bulk requeue job #{claims.job_id} stopped: {message}."
                )
            else:
                await claims.rollback()
            raise BrokerError(message)
        await asyncio.sleep(min(2**attempt * 0.5, 10))
        letters = [row for row in letters if row.pk in unknown]
