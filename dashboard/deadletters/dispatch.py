"""The dispatcher: the worker side of scheduled requeues (``schedule``) and policy retries.

One dispatcher runs at a time across every worker process: it holds a Redis
lease (:class:`Lease`, a redis-py ``Lock`` with its own token, expiring after
``MQB_DLQ_SCHEDULE_LEASE`` seconds and renewed while the dispatcher is alive).
Every worker that serves the jobs queue starts a thread of its own
(:class:`DispatcherThread`, started and stopped by a worker bootstep in
``dashboard.celery``), outside the worker's pool: bulk jobs filling every pool
thread do not hold it up. The thread runs the loop while it holds the lease;
while another process holds it, the thread tries to take it every
:data:`STANDBY` seconds, so a worker killed with ``kill -9`` is replaced once
its lease expires.

The loop:

1. Claim: at most ``MQB_DLQ_SCHEDULE_BATCH`` due letters (``schedule.due_now()``,
   oldest due first) turn from ``scheduled`` into ``requeuing`` in one
   conditional UPDATE, with ``claim_job`` = :data:`CLAIM` (0: no job has that
   id), so ``requeue_batch.settle`` works on them as on a job's rows; the marker
   is cleared once they are settled.
2. Send them with ``requeue_batch`` (redirects apply there), one group per
   schedule or policy, acting as the schedule's creator (a letter a policy
   scheduled, or one whose creator is gone, acts as the system: no user).
   Sent letters become ``requeued``, unroutable ones ``requeue_failed`` with the
   reason; one audit entry per sent batch per schedule or policy.
3. A broker that cannot be reached: the group's letters go back to
   ``scheduled`` (not lost, not pending) with ``last_error``; their cluster is
   left alone for a growing pause (1 s doubling up to 60 s) and tried again.
   The loop never ends on an error; it ends when the lease is lost or the
   worker shuts down (a warm shutdown stops the thread between batches and
   releases the lease).
4. ``schedule.finish_if_done`` for each schedule touched, then sleep until the
   next due time or ``MQB_DLQ_SCHEDULE_POLL``, whichever is sooner.

Recovery: a dispatcher killed (``kill -9``) while sending leaves its claimed
letters ``requeuing`` with claim 0 and its lease to expire. The next
dispatcher, on taking the lease, sends those letters again: that batch is the
in-flight window, at most ``MQB_DLQ_SCHEDULE_BATCH`` duplicates at the origin,
each with the original message id. Nothing is lost: a letter is ``scheduled``
until claimed, and claimed until settled.

Races with the pages: cancelling a letter the dispatcher already claimed is
too late (it is ``requeuing``, not ``scheduled``: cancel leaves it and it is
sent); bringing a letter forward makes it due now and the next claim takes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import close_old_connections, connection
from django.db.models import Count
from django.utils import timezone
from redis.exceptions import LockError

from brokers.base import BrokerError
from dashboard.core import display
from dashboard.core.audit import record
from dashboard.deadletters import requeue_batch, schedule
from dashboard.deadletters.common import User
from dashboard.models import AuditEntry, DeadLetter, RequeueSchedule

CLAIM = 0  # claim_job of the letters the dispatcher holds (no job has pk 0)
SCHEDULED = DeadLetter.Status.SCHEDULED
REQUEUING = DeadLetter.Status.REQUEUING
ACTION = "deadletters.schedule_send"
display.register(ACTION, "Sent when due")
SEND_RETRIES = 2  # unconfirmed sends retried in place before the letters wait again
MAX_PAUSE = 60.0  # longest wait before a cluster that failed is tried again
log = logging.getLogger(__name__)


def lease_key() -> str:
    """One lease per deployment (its Celery queue names it)."""
    return f"mqboard:{settings.CELERY_TASK_DEFAULT_QUEUE}:deadletters:dispatch"


class Lease:
    """The dispatcher's Redis lease: taken without waiting, renewed, released."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.client = client or redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        self.lock = self.client.lock(
            lease_key(), timeout=settings.MQB_DLQ_SCHEDULE_LEASE, thread_local=False
        )
        self.token = uuid.uuid4().hex

    def take(self) -> bool:
        return bool(self.lock.acquire(blocking=False, token=self.token))

    def renew(self) -> bool:
        """Reset the lease's time to live; False when it was lost (expired, taken)."""
        try:
            self.lock.reacquire()
        except LockError:
            return False
        return True

    def release(self) -> None:
        try:
            self.lock.release()
        except LockError:
            pass  # expired or taken over meanwhile: nothing of ours to give back
        except redis.RedisError as exc:
            log.warning("dispatcher: could not release its lease (it expires): %s", exc)
        finally:
            self.client.close()


@dataclass
class Group:
    """Letters claimed together that act for one schedule or one policy."""

    schedule_id: int | None
    policy_id: int | None
    rows: list[requeue_batch.Row] = field(default_factory=list)

    @property
    def target(self) -> str:
        if self.schedule_id is not None:
            return f"schedule #{self.schedule_id}"
        if self.policy_id is not None:
            return f"policy #{self.policy_id}"
        return "deadletters"


@dataclass
class Claimed:
    groups: list[Group]
    count: int


def _claim(exclude_clusters: Sequence[int], recover: bool) -> Claimed:
    """Claim the next due letters (or, ``recover``, read those a dead dispatcher held)."""
    size = max(1, settings.MQB_DLQ_SCHEDULE_BATCH)
    if recover:
        rows = DeadLetter.objects.filter(status=REQUEUING, claim_job=CLAIM).order_by("pk")
        ids = list(rows.values_list("pk", flat=True)[:size])
        if ids:
            log.warning("dispatcher: sending again %d letters claimed and never settled", len(ids))
    else:
        due = DeadLetter.objects.filter(schedule.due_now())
        if exclude_clusters:
            due = due.exclude(cluster_id__in=list(exclude_clusters))
        ids = list(due.order_by("due_at", "pk").values_list("pk", flat=True)[:size])
        if ids:
            # Conditional: a letter cancelled since the read stays out.
            DeadLetter.objects.filter(pk__in=ids, status=SCHEDULED).update(
                status=REQUEUING, claim_job=CLAIM, claimed_at=timezone.now()
            )
    if not ids:
        return Claimed([], 0)
    owners = {
        pk: (sid, pid)
        for pk, sid, pid in DeadLetter.objects.filter(
            pk__in=ids, status=REQUEUING, claim_job=CLAIM
        ).values_list("pk", "schedule_id", "policy_id")
    }
    # Only letters held with our claim are read (requeueing ones are not claimable again).
    letters = requeue_batch.claim_batch(CLAIM, sorted(owners))
    groups: dict[tuple[int | None, int | None], Group] = {}
    for row in letters:
        sid, pid = owners[row.pk]
        key = (sid, None) if sid is not None else (None, pid)
        groups.setdefault(key, Group(*key)).rows.append(row)
    return Claimed(list(groups.values()), len(ids))


def _acting_user(group: Group) -> User:
    """The schedule's creator; the system (no user) for a policy's letters or a creator gone."""
    if group.schedule_id is not None:
        found = (
            RequeueSchedule.objects.filter(pk=group.schedule_id)
            .select_related("created_by")
            .first()
        )
        if found is not None and found.created_by is not None:
            return found.created_by
    return AnonymousUser()


def _put_back(ids: Sequence[int], why: str) -> int:
    """Letters whose send failed wait again (``scheduled``, same due time) with the reason."""
    return DeadLetter.objects.filter(pk__in=list(ids), status=REQUEUING, claim_job=CLAIM).update(
        status=SCHEDULED, claim_job=None, last_error=why[:2000]
    )


def _close(group: Group, user: User, error: str = "") -> None:
    """The group's letters are settled: drop the claim marker (a letter page would read it as
    a job) and write the batch's one audit entry."""
    ids = [row.pk for row in group.rows]
    DeadLetter.objects.filter(pk__in=ids, claim_job=CLAIM).exclude(status=REQUEUING).update(
        claim_job=None
    )
    by_status = dict(
        DeadLetter.objects.filter(pk__in=ids)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    sent = by_status.get(DeadLetter.Status.REQUEUED, 0)
    failed = by_status.get(DeadLetter.Status.REQUEUE_FAILED, 0)
    if not sent and not failed and not error:
        return
    parameters: dict[str, Any] = {
        "letters": len(ids),
        "sent": sent,
        "failed": failed,
        "waiting_again": by_status.get(SCHEDULED, 0),
        # Every letter of the batch (at most MQB_DLQ_SCHEDULE_BATCH): letter pages read them.
        "ids": ids,
    }
    if group.schedule_id is not None:
        parameters["schedule"] = group.schedule_id
    if group.policy_id is not None:
        parameters["policy"] = group.policy_id
    record(
        action=ACTION,
        user=user,
        target=group.target,
        parameters=parameters,
        outcome=AuditEntry.Outcome.FAILED if error else AuditEntry.Outcome.OK,
        detail=error[:2000],
    )


def _next_due() -> datetime | None:
    # The (status, due_at) index answers this without reading letters.
    return (
        DeadLetter.objects.filter(status=SCHEDULED)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )


def _finish(schedule_ids: set[int]) -> None:
    for pk in schedule_ids:
        schedule.finish_if_done(pk)


def _drop_stale_connections() -> None:
    if not connection.in_atomic_block:
        close_old_connections()


class Dispatcher:
    """The loop (see the module docstring); ``stop`` ends it between batches."""

    def __init__(self, lease: Lease, stop: threading.Event) -> None:
        self.lease = lease
        self.stop = stop
        self.lost = False
        self.senders = requeue_batch.Senders()
        # cluster id -> (monotonic time it may be tried again, current pause)
        self.paused: dict[int, tuple[float, float]] = {}

    @property
    def running(self) -> bool:
        return not self.stop.is_set() and not self.lost

    async def run(self) -> None:
        keeper = asyncio.create_task(self._keep_lease())
        try:
            # Letters a dead dispatcher claimed and never settled: sent again.
            while self.running and await self._step(recover=True):
                pass
            while self.running:
                claimed = await self._step(recover=False)
                if claimed < max(1, settings.MQB_DLQ_SCHEDULE_BATCH):
                    await self._sleep(await sync_to_async(self._wait)(claimed))
        finally:
            keeper.cancel()
            await self.senders.close()

    async def _keep_lease(self) -> None:
        step = max(0.2, settings.MQB_DLQ_SCHEDULE_LEASE / 3)
        while self.running:
            await asyncio.sleep(step)
            try:
                kept = await asyncio.to_thread(self.lease.renew)
            except redis.RedisError as exc:
                log.warning("dispatcher: could not renew its lease: %s", exc)
                continue  # the lease may still be ours; try again before it expires
            if not kept:
                log.warning("dispatcher: lease lost; stopping")
                self.lost = True

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        # Short steps: ``stop`` is set from another thread (the worker's shutdown).
        while self.running and (left := end - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, 0.1))

    def _wait(self, claimed: int) -> float:
        poll = settings.MQB_DLQ_SCHEDULE_POLL
        due = _next_due()
        if due is None:
            return poll
        left = (due - timezone.now()).total_seconds()
        if left <= 0:
            # Due but not claimed: its cluster is paused after a failure.
            return poll if not claimed else 0.0
        return min(poll, left)

    async def _step(self, recover: bool) -> int:
        """One claim and its sends; how many letters were claimed."""
        now = time.monotonic()
        waiting = [pk for pk, (until, _) in self.paused.items() if until > now]
        try:
            claimed = await sync_to_async(_claim)(waiting, recover)
        except Exception:
            log.exception("dispatcher: could not claim due letters")
            await self._sleep(settings.MQB_DLQ_SCHEDULE_POLL)
            return 0
        touched: set[int] = set()
        for group in claimed.groups:
            await self._send(group)
            if group.schedule_id is not None:
                touched.add(group.schedule_id)
        if touched:
            try:
                await sync_to_async(_finish)(touched)
            except Exception:
                log.exception("dispatcher: could not finish schedules %s", sorted(touched))
        return claimed.count

    async def _send(self, group: Group) -> None:
        error = ""
        user: User = AnonymousUser()
        try:
            user = await sync_to_async(_acting_user)(group)
            await requeue_batch.send_batch(CLAIM, group.rows, self.senders, user, SEND_RETRIES)
        except BrokerError as exc:
            error = exc.message
            log.warning("dispatcher: %s: %d not sent: %s", group.target, len(group.rows), error)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("dispatcher: %s: %d not sent", group.target, len(group.rows))
        if error:
            await self._fail(group, error)
        try:
            await sync_to_async(_close)(group, user, error)
        except Exception:
            log.exception("dispatcher: could not close the batch of %s", group.target)

    async def _fail(self, group: Group, error: str) -> None:
        # The connection may be broken: open fresh ones next time.
        await self.senders.close()
        self.senders = requeue_batch.Senders()
        why = f"Not sent: {error} It will be tried again."
        ids = [row.pk for row in group.rows]
        try:
            await sync_to_async(_put_back)(ids, why)
        except Exception:
            log.exception("dispatcher: could not put %d letters back", len(ids))
        clusters = await sync_to_async(
            lambda: set(DeadLetter.objects.filter(pk__in=ids).values_list("cluster_id", flat=True))
        )()
        for pk in clusters:
            pause = min(MAX_PAUSE, self.paused.get(pk, (0.0, 0.5))[1] * 2)
            self.paused[pk] = (time.monotonic() + pause, pause)


def lease_held() -> bool | None:
    """Whether a dispatcher holds the lease now (None: Redis could not be asked)."""
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.exists(lease_key()))
    except redis.RedisError:
        return None
    finally:
        client.close()


def run_dispatcher(stop: threading.Event) -> str:
    """Run the loop while this process holds the lease; "busy" when another holds it."""
    if stop.is_set():
        return "stopping"
    lease = Lease()
    try:
        taken = lease.take()
    except redis.RedisError as exc:
        log.warning("dispatcher: Redis unavailable: %s", exc)
        lease.client.close()
        return "no-redis"
    if not taken:
        lease.client.close()
        return "busy"
    log.info("dispatcher: lease taken in pid %d; running", os.getpid())
    _drop_stale_connections()
    outcome = "failed"
    try:
        dispatcher = Dispatcher(lease, stop)
        asyncio.run(dispatcher.run())
        outcome = "lost" if dispatcher.lost else "stopped"
        return outcome
    finally:
        lease.release()
        _drop_stale_connections()
        log.info("dispatcher: %s in pid %d; lease released", outcome, os.getpid())


STANDBY = 1.0  # seconds between two tries at the lease while another process holds it


class DispatcherThread:
    """The dispatcher of one worker process: a thread of its own, not a slot of the pool.

    It competes for the lease (``run_dispatcher``) until ``stop``; a warm
    shutdown sets the event, the loop ends after its current batch and gives the
    lease back, and ``stop`` waits for that (at most ``MQB_DLQ_SCHEDULE_LEASE``
    seconds: past that, the lease expires by itself).
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="mqboard-dispatcher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(max(1.0, settings.MQB_DLQ_SCHEDULE_LEASE))

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    run_dispatcher(self.stopping)
                except Exception:
                    log.exception("dispatcher: failed; trying again")
                self.stopping.wait(min(STANDBY, settings.MQB_DLQ_SCHEDULE_LEASE / 3))
        finally:
            connection.close()
