"""Per-process reuse of dead-letter counts while the letters table has not changed.

Counting the inbox's groups reads every row of the letters table (a table scan of
wide rows: tens of milliseconds at a few thousand letters). Fifty people with the
inbox or the overview open would repeat that scan for every page view. Instead, each
web process keeps the last answers and reuses one as long as the table's *stamp* is
unchanged:

- per status: how many letters and the sum of their ids (the status index alone
  answers this, without reading a row: a letter moving from one status to another
  changes both sums);
- how many letters are poison, and how many parked, with their id sums (their own
  indexes);
- the newest capture time and the largest id (one index look-up each).

A letter captured, deleted, requeued, discarded, scheduled, flagged poison or parked
changes the stamp, whichever process wrote it. Fields a letter's status change does
not touch (its failure times, its text) are written when it is captured, so a stamp
change covers them. As a safety net, an answer is never reused after
``MQB_LETTER_COUNTS_MAX_AGE`` seconds (0 turns the reuse off).

Answers are shared between threads: callers must not mutate what they get.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from dashboard.models import DeadLetter

T = TypeVar("T")

MAX_ENTRIES = 256
"""answers kept per process (filters and pages); the least recently used go first"""

_lock = threading.Lock()
_answers: OrderedDict[Hashable, tuple[Hashable, float, Any]] = OrderedDict()


def letters_stamp() -> tuple[Any, ...]:
    """What changes whenever a letter is added, removed or changes status, poison or
    parked; read from indexes only (two queries)."""
    # Only the table's name is formatted in; values are parameters.
    table = connection.ops.quote_name(DeadLetter._meta.db_table)
    by_status_sql = f"SELECT status, COUNT(*), SUM(id) FROM {table} GROUP BY status"  # noqa: S608
    # ``WHERE poison`` as the partial indexes' own predicate: SQLite uses an index whose
    # predicate the query repeats, and does not see that ``poison = 1`` implies it (it
    # read the whole table, about 3 ms at 5,000 letters).
    poison, parked = (connection.ops.quote_name(f) for f in ("poison", "parked"))
    flags_sql = (
        f"SELECT (SELECT MAX(captured_at) FROM {table}), (SELECT MAX(id) FROM {table}),"  # noqa: S608
        f" (SELECT COUNT(*) FROM {table} WHERE {poison}),"
        f" (SELECT SUM(id) FROM {table} WHERE {poison}),"
        f" (SELECT COUNT(*) FROM {table} WHERE {parked}),"
        f" (SELECT SUM(id) FROM {table} WHERE {parked})"
    )
    with connection.cursor() as cursor:
        cursor.execute(by_status_sql)
        by_status = tuple(sorted(tuple(row) for row in cursor.fetchall()))
        cursor.execute(flags_sql)
        flags = tuple(cursor.fetchone() or ())
    return by_status + flags


class SharedStamp:
    """``letters_stamp()`` shared by the requests that want it at once.

    A caller gets the stamp of a read that *started after it asked*: one in flight when
    it asks has started too early, so it waits for that read to end and for the next
    one, which it starts itself or shares with whoever asked meanwhile. So every caller
    sees each write committed before it asked, as its own read would, and under load
    one read answers every request that arrived while the previous one ran.
    """

    def __init__(self, read: Callable[[], tuple[Any, ...]]) -> None:
        self._read = read
        self._changed = threading.Condition(threading.Lock())
        self._tickets = 0  # one per ask and per read started, in order
        self._reading = False
        self._last: tuple[int, tuple[Any, ...]] | None = None  # (its start ticket, stamp)
        self.reads = 0

    def get(self) -> tuple[Any, ...]:
        with self._changed:
            self._tickets += 1
            asked = self._tickets
            while True:
                if self._last is not None and self._last[0] > asked:
                    return self._last[1]
                if not self._reading:
                    break
                self._changed.wait()
            self._reading = True
            self._tickets += 1
            started = self._tickets
        stamp: tuple[Any, ...] | None = None
        try:
            stamp = self._read()
            self.reads += 1
            return stamp
        finally:
            with self._changed:
                self._reading = False
                if stamp is not None:
                    self._last = (started, stamp)
                self._changed.notify_all()


_shared_stamp = SharedStamp(letters_stamp)


def current_stamp() -> tuple[Any, ...]:
    """The letters' stamp as of now: shared with concurrent callers (``SharedStamp``),
    read alone inside a transaction (which may hold letters only it can see)."""
    if connection.in_atomic_block:
        return letters_stamp()
    return _shared_stamp.get()


@dataclass
class _LoopStamp:
    """One event loop's share of stamp reads (see :func:`astamp`)."""

    tickets: int = 0  # one per ask and per read started, in order
    reading: asyncio.Future[None] | None = None  # done when the read in flight ends
    last: tuple[int, tuple[Any, ...]] | None = None  # (its start ticket, stamp)


_loop_stamps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopStamp] = (
    weakref.WeakKeyDictionary()
)


async def astamp() -> tuple[Any, ...]:
    """:func:`current_stamp` for callers in the event loop, shared as ``SharedStamp``
    shares it: each caller gets the stamp of a read that started after it asked. One
    caller reads (on its request's thread); those that ask meanwhile wait in the loop,
    without a thread each, and share the next read. Under fifty viewers one trip to a
    thread and one query answer every request that arrived while the last read ran."""
    loop = asyncio.get_running_loop()
    state = _loop_stamps.get(loop)
    if state is None:
        state = _loop_stamps[loop] = _LoopStamp()
    state.tickets += 1
    asked = state.tickets
    while True:
        if state.last is not None and state.last[0] > asked:
            return state.last[1]
        if state.reading is None:
            break
        await asyncio.wait([state.reading])  # its end, not its errors: the next read retries
    done: asyncio.Future[None] = loop.create_future()
    state.reading = done
    state.tickets += 1
    started = state.tickets
    try:
        stamp = await sync_to_async(current_stamp)()
        state.last = (started, stamp)
        return stamp
    finally:
        state.reading = None
        done.set_result(None)


NOT_KEPT: Any = object()


def kept(key: Hashable, stamp: tuple[Any, ...]) -> Any:
    """The answer kept under ``key`` for ``stamp`` (younger than the maximum age), else
    ``NOT_KEPT``; never reads the database."""
    max_age = float(settings.MQB_LETTER_COUNTS_MAX_AGE)
    if max_age <= 0:
        return NOT_KEPT
    now = time.monotonic()
    with _lock:
        found = _answers.get(key)
        if found is not None and found[0] == stamp and now - found[1] < max_age:
            _answers.move_to_end(key)
            return found[2]
    return NOT_KEPT


def reuse(key: Hashable, compute: Callable[[], T], stamp: tuple[Any, ...] | None = None) -> T:
    """``compute()``'s answer, or the one kept under ``key`` while the letters' stamp is
    the same as when it was computed (and it is younger than the maximum age).
    ``stamp``: one the caller read just before (from :func:`astamp`), else read here."""
    max_age = float(settings.MQB_LETTER_COUNTS_MAX_AGE)
    if max_age <= 0:
        return compute()
    if stamp is None:
        stamp = current_stamp()
    now = time.monotonic()
    found = kept(key, stamp)
    if found is not NOT_KEPT:
        value: T = found
        return value
    value = compute()
    with _lock:
        _answers[key] = (stamp, now, value)
        _answers.move_to_end(key)
        while len(_answers) > MAX_ENTRIES:
            _answers.popitem(last=False)
    return value


def forget() -> None:
    """Drop every kept answer (e.g. after this process changed letters)."""
    with _lock:
        _answers.clear()
