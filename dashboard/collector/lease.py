"""The collectors' leader lease: any number of collectors run, exactly one works.

Every ``manage.py collect`` process runs a lease keeper thread. The collector holding
the lease runs the loops and renews it every ``poll`` seconds (a quarter of the TTL);
the others stand by and try to take it every half ``poll``. Two kinds of lease,
chosen by the database:

* **PostgreSQL**: a session advisory lock (``pg_try_advisory_lock``) on a dedicated
  connection. The server releases it the moment that connection dies, so a leader
  killed with ``kill -9`` frees it at once. The connection runs with
  ``idle_session_timeout`` = 3 x TTL, at least ``PAUSED_SESSION_FLOOR`` (10 s; death
  needs no timeout here, so it is generous: on a starved machine a live leader's
  keeper thread was seen to miss 3 s, lose the lease and restart every loop again and
  again) and
  the keeper touches it every ``poll``: a leader that is paused (SIGSTOP, a frozen VM)
  longer than that has its session ended by the server, which frees the lock too.
* **Anything else** (SQLite): a Redis key bound to the leader's Redis connection the
  same way (:class:`RedisLease`). Its value names this process and that connection's
  ``CLIENT ID``; a standby that finds the key held asks Redis whether that client is
  still connected and, if it is gone (a ``kill -9`` closes the socket at once), takes
  the key over with a compare-and-set. The key's TTL is the paused-session one above,
  renewed every ``poll`` by a compare-and-extend script: a paused leader, or one cut
  off from Redis, keeps its connection and loses the lease when the key expires.

**Fencing** (``dashboard.core.leader``): whoever takes the lease increments the token
in the ``CollectorLease`` row, and the leader's commits check it at the end of their
transaction; a paused old leader that comes back finds a newer token, rolls back
and stops. Fenced: every capture batch (rows stored and the DLQ's counters; a batch
refused is not acknowledged, so the broker keeps it), every alert evaluation (alert
state changes and the notifications they queue), and every metrics sample (history
rows and consumer rows). Not fenced: pushes to browsers, Redis snapshots, the capture
position and ack marks and capture errors (they describe the broker, and the new
leader's own values follow), and the alert sender (its rows are claimed one sender at
a time already). A check that finds a newer token ends this collector's term at once.
On PostgreSQL, a leader paused between its check and its commit holds the row
``FOR SHARE``; ``idle_in_transaction_session_timeout`` (the TTL, set for that
transaction only) ends that session so the new leader's increment goes on.

Settings: ``MQB_COLLECTOR_LEASE_TTL`` (seconds; 0 means half the sample interval,
at least 1 s: shorter ones are lost to a busy machine's stalls). Takeover after a
``kill -9`` is at most ``poll / 2`` with either lease (``TTL + poll / 2`` with a Redis
that refuses ``CLIENT`` commands), plus the first sample (the standby has imported
the loops and connected the brokers already: ``collect``'s warm-up).

Each collector also writes its ``CollectorMember`` row (leading or standing by)
every second or so; :func:`get_collector_status` reads both tables for the pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, ParamSpec, Protocol, TypeVar

import psycopg
import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from dashboard.core import leader
from dashboard.core.leader import take_token
from dashboard.models import CollectorMember

log = logging.getLogger("dashboard.collector.lease")

ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"mqboard.collector").digest()[:8], signed=True)
HEARTBEAT = 1.0  # seconds between writes of this process's CollectorMember row
P = ParamSpec("P")
R = TypeVar("R")


# -- the two kinds of lease -------------------------------------------------------------


class Lease(Protocol):
    kind: str
    ttl: float
    """seconds a holder that stopped renewing keeps it"""

    def try_acquire(self) -> bool: ...

    def renew(self) -> bool: ...

    def touch(self) -> None: ...

    def release(self) -> None: ...


def _warn_once(lease: PostgresLease | RedisLease, problem: str) -> None:
    """A standby retries every poll: say what is wrong once, not every time."""
    if problem != lease.problem:
        log.warning("%s", problem)
    lease.problem = problem


# Seconds a PostgreSQL leader's lock session may go without a query before the server
# ends it (a paused leader); a live one's keeper queries it every ``poll``.
PAUSED_SESSION_FLOOR = 10.0


class PostgresLease:
    """A session advisory lock on a connection of its own (autocommit)."""

    kind = "postgresql advisory lock"
    problem = ""

    def __init__(self, ttl: float) -> None:
        self.ttl = max(PAUSED_SESSION_FLOOR, 3 * ttl)
        self.conn: psycopg.Connection[Any] | None = None
        self.held = False

    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            params["connect_timeout"] = max(2, int(self.ttl))
            conn = psycopg.connect(**params, autocommit=True)
            conn.execute(
                "SELECT set_config('idle_session_timeout', %s, false),"
                " set_config('application_name', 'mqboard collector lease', false)",
                [str(int(self.ttl * 1000))],
            )
            self.conn = conn
        return self.conn

    def _drop(self) -> None:
        self.held = False
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None

    def try_acquire(self) -> bool:
        try:
            row = (
                self._connection()
                .execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
                .fetchone()
            )
        except psycopg.Error as exc:
            _warn_once(self, f"lease: cannot reach PostgreSQL: {exc}")
            self._drop()
            return False
        self.problem = ""
        self.held = bool(row and row[0])
        return self.held

    def renew(self) -> bool:
        """Still held: the session is alive and holds the lock."""
        if not self.held:
            return False
        try:
            row = (
                self._connection()
                .execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND granted",
                )
                .fetchone()
            )
        except psycopg.Error as exc:
            log.warning("lease: the lock's session ended: %s", exc)
            self._drop()
            return False
        self.held = bool(row and row[0])
        return self.held

    def touch(self) -> None:
        """Keep a standby's session from timing out."""
        if self.conn is not None and not self.held:
            try:
                self.conn.execute("SELECT 1")
            except psycopg.Error:
                self._drop()

    def release(self) -> None:
        self._drop()  # closing the session releases its locks


RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
# Set the key when it is missing or still holds exactly ARGV[3] (a holder whose
# connection is gone): one step, so of two standbys that saw it gone only one takes it.
TAKE = """
local held = redis.call('get', KEYS[1])
if held == false or held == ARGV[3] then
  redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
  return 1
end
return 0
"""


def holder_client(value: bytes | None) -> int | None:
    """The Redis client id a lease value names (its last field), None if it names none."""
    if value is None:
        return None
    last = value.rsplit(b":", 1)[-1]
    return int(last) if last.isdigit() else None


class RedisLease:
    """A Redis key bound to the holder's Redis connection, as the advisory lock is to its
    PostgreSQL session.

    The value names this process and the id of its one Redis connection (``CLIENT ID``).
    A standby that finds the key held asks Redis whether that client is still connected
    (``CLIENT LIST ID``): a leader killed with ``kill -9`` has its socket closed by its
    kernel, Redis drops the client at once, and the standby takes the key over with a
    compare-and-set on the exact value it read. A leader that is paused, or cut off from
    Redis, keeps its client connected: the key's TTL (3 x the configured TTL, at least
    ``PAUSED_SESSION_FLOOR``, as on PostgreSQL) ends its lease instead. Every renewal
    checks, in the same round trip, that the connection is still the one the value
    names: a leader whose connection was replaced (Redis restarted, the socket broke)
    has lost the lease. A Redis that refuses ``CLIENT ID`` or ``CLIENT LIST`` (an ACL)
    leaves only the TTL, the configured one, for takeover.
    """

    kind = "redis key"
    problem = ""

    def __init__(self, ttl: float) -> None:
        self.short_ttl = ttl
        self.ttl = max(PAUSED_SESSION_FLOOR, 3 * ttl)
        database = str(settings.DATABASES["default"]["NAME"])
        scope = hashlib.sha256(database.encode()).hexdigest()[:16]
        self.key = f"{settings.MQB_CHANNEL_PREFIX}:collector-lease:{scope}"
        self.base = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.me = self.base
        self.client_id: int | None = None
        self.sessions = True  # Redis answers CLIENT ID and CLIENT LIST
        self._probed = False  # CLIENT LIST asked once (an ACL may allow CLIENT ID alone)
        timeout = max(0.5, ttl / 4)
        # One connection: the value names it, so every command goes through it.
        pool = redis.ConnectionPool.from_url(
            settings.REDIS_URL, max_connections=1,
            socket_timeout=timeout, socket_connect_timeout=timeout,
        )  # fmt: skip
        self.client = redis.Redis(connection_pool=pool)
        self._renew = self.client.register_script(RENEW)
        self._release = self.client.register_script(RELEASE)
        self._take = self.client.register_script(TAKE)

    def _ttl_ms(self) -> int:
        return int((self.ttl if self.sessions else self.short_ttl) * 1000)

    def _with_client_id(self, command: Callable[[redis.client.Pipeline], object]) -> list[Any]:
        """``CLIENT ID`` and ``command`` in one round trip on the one connection, so the id
        is that of the connection the command ran on."""
        pipe = self.client.pipeline(transaction=False)
        if self.sessions:
            pipe.client_id()
        command(pipe)
        try:
            answers = pipe.execute(raise_on_error=False)
        finally:
            pipe.reset()
        if not self.sessions:
            answers.insert(0, None)
        elif isinstance(answers[0], redis.ResponseError):
            self._no_sessions(answers[0])
            answers[0] = None
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return answers

    def _no_sessions(self, exc: Exception) -> None:
        self.sessions = False
        log.warning(
            "lease: Redis refuses CLIENT ID or CLIENT LIST (%s): a dead leader is "
            "replaced when its key expires, %g s after its last renewal", exc, self.short_ttl,
        )  # fmt: skip

    def _gone(self, held: bytes) -> bool:
        """Whether the client the value names has left Redis (False when unknown)."""
        holder = holder_client(held)
        if holder is None or not self.sessions:
            return False
        try:
            return not self.client.client_list(client_id=[holder])
        except redis.ResponseError as exc:
            self._no_sessions(exc)
            return False

    def try_acquire(self) -> bool:
        try:
            client_id, held = self._with_client_id(lambda pipe: pipe.get(self.key))
            if client_id is not None and not self._probed:
                self._probed = True
                self._gone(str(client_id).encode())  # refused: no sessions, the TTL only
                client_id = client_id if self.sessions else None
            if held is not None and not self._gone(held):
                self.problem = ""
                return False
            gone = held or b""
            me = self.base if client_id is None else f"{self.base}:{client_id}"
            now_id, taken = self._with_client_id(
                lambda pipe: self._take(
                    keys=[self.key], args=[me, self._ttl_ms(), gone], client=pipe
                )
            )
        except (OSError, redis.RedisError) as exc:
            _warn_once(self, f"lease: cannot reach Redis: {exc}")
            return False
        self.problem = ""
        if not taken:
            return False
        self.me, self.client_id = me, client_id
        if now_id != client_id:  # the connection was replaced in between: not ours to keep
            self.release()
            return False
        if gone:
            log.info(
                "lease: the leader's Redis connection (client %s) is gone: taking over",
                holder_client(gone),
            )
        return True

    def renew(self) -> bool:
        try:
            now_id, renewed = self._with_client_id(
                lambda pipe: self._renew(
                    keys=[self.key], args=[self.me, self._ttl_ms()], client=pipe
                )
            )
        except (OSError, redis.RedisError) as exc:
            log.warning("lease: cannot renew in Redis: %s", exc)
            return False
        if now_id != self.client_id:
            log.warning("lease: this collector's Redis connection was replaced")
            self.release()
            return False
        return bool(renewed)

    def touch(self) -> None:
        return None

    def release(self) -> None:
        with contextlib.suppress(OSError, redis.RedisError):
            self._release(keys=[self.key], args=[self.me])


def lease_ttl(interval: float) -> float:
    configured = float(getattr(settings, "MQB_COLLECTOR_LEASE_TTL", 0.0) or 0.0)
    return configured if configured > 0 else max(1.0, interval / 2)


def make_lease(ttl: float) -> Lease:
    if connection.vendor == "postgresql":
        return PostgresLease(ttl)
    return RedisLease(ttl)


# -- the keeper ---------------------------------------------------------------------------


class Keeper(threading.Thread):
    """Takes, renews and gives back the lease in a thread of its own, so a busy event loop
    cannot delay a renewal. It tells the event loop when a term starts and ends."""

    def __init__(
        self,
        lease: Lease,
        poll: float,
        loop: asyncio.AbstractEventLoop,
        started: Callable[[int], None],
        ended: Callable[[], None],
    ) -> None:
        super().__init__(name="collector-lease", daemon=True)
        self.lease, self.poll, self.loop = lease, poll, loop
        self.started, self.ended = started, ended
        self.closing = threading.Event()
        self.fenced_off = threading.Event()  # a fence check found a newer token
        self.idle = threading.Event()  # no term running: a new one may start
        self.idle.set()
        self.leading = False
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.started_at = timezone.now()
        self._member: int | None = None
        self._beat = 0.0

    def run(self) -> None:
        try:
            while not self.closing.is_set():
                try:
                    self.step()
                except Exception:  # a bug here must not leave a leader that no one renews
                    log.exception("lease keeper failed; this collector stops leading")
                    self.lose()
                # The leader renews every poll; standbys look twice as often.
                self.closing.wait(self.poll if self.leading else self.poll / 2)
        finally:
            self.lease.release()
            with contextlib.suppress(DatabaseError):
                CollectorMember.objects.filter(pk=self._member or 0).delete()
            close_old_connections()

    def step(self) -> None:
        if self.leading and self.fenced_off.is_set():
            log.warning("a newer leader fenced this collector off: it stops its loops")
            self.lose()
        elif self.leading:
            if not self.lease.renew():
                log.warning("lease lost: this collector stops its loops")
                self.lose()
        elif self.idle.is_set() and self.lease.try_acquire():
            try:
                token = take_token(self.host, self.pid)
            except DatabaseError as exc:
                log.warning("lease taken but no token recorded: %s", exc)
                close_old_connections()
                self.lease.release()
                return
            self.leading = True
            self.fenced_off.clear()
            self.idle.clear()
            log.info("leading with token %d (%s)", token, self.lease.kind)
            self.loop.call_soon_threadsafe(self.started, token)
        else:
            self.lease.touch()
        self.heartbeat()

    def lose(self) -> None:
        if self.leading:
            self.leading = False
            self.lease.release()
            self.loop.call_soon_threadsafe(self.ended)

    def heartbeat(self) -> None:
        now = timezone.now()
        if self._beat and (now.timestamp() - self._beat) < HEARTBEAT:
            return
        self._beat = now.timestamp()
        try:
            if self._member is None:
                self._member = CollectorMember.objects.create(
                    host=self.host[:255], pid=self.pid, started_at=self.started_at,
                    seen_at=now, is_leader=self.leading,
                ).pk  # fmt: skip
            else:
                CollectorMember.objects.filter(pk=self._member).update(
                    seen_at=now, is_leader=self.leading
                )
            if self.leading:  # forget collectors long gone
                CollectorMember.objects.filter(seen_at__lt=now - timedelta(hours=1)).delete()
        except DatabaseError as exc:
            log.debug("collector heartbeat not written: %s", exc)
            close_old_connections()


async def lead(
    work: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: asyncio.Event, interval: float
) -> None:
    """Run ``work(term)`` whenever this process holds the lease, until ``stop`` is set.

    ``term`` is set the moment the lease is lost (or a fence check finds a newer token);
    ``work`` must then return soon, and only then may this process lead again.
    """
    ttl = lease_ttl(interval)
    loop = asyncio.get_running_loop()
    term: asyncio.Event | None = None
    task: asyncio.Task[None] | None = None
    lease = make_lease(ttl)
    leader.enable(lease.ttl)

    def started(token: int) -> None:
        nonlocal term, task
        term = asyncio.Event()
        leader.set_token(token, on_lost=fenced_off)
        task = asyncio.create_task(work(term), name=f"term-{token}")
        task.add_done_callback(lambda _: finished())

    def fenced_off() -> None:
        keeper.fenced_off.set()
        loop.call_soon_threadsafe(ended)

    def ended() -> None:
        leader.set_token(None)
        if term is not None:
            term.set()

    def finished() -> None:
        log.info("loops stopped")
        keeper.idle.set()

    keeper = Keeper(lease, ttl / 4, loop, started, ended)
    log.info("lease: %s, TTL %g s, renewed every %g s", lease.kind, lease.ttl, ttl / 4)
    keeper.start()
    try:
        await stop.wait()
    finally:
        leader.set_token(None)
        if term is not None:
            term.set()
        if task is not None:
            await asyncio.wait([task])
        keeper.closing.set()
        await asyncio.to_thread(keeper.join, 10)
