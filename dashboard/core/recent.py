"""A value a web process reads at most once per ``MQB_HEALTH_REUSE_SECONDS``.

Some parts of a page show state that changes at the collector's pace and that the page
keeps current over its websocket anyway: which collector leads, how many alerts fire.
Fifty viewers reloading would read the same rows fifty times a second. A
:class:`Recent` keeps the last answer of its ``read`` for ``MQB_HEALTH_REUSE_SECONDS``
(0: read every time), the same reuse as the clusters' stored checks
(``dashboard.overview.recent``). :meth:`Recent.forget` drops it at once: callers hook it
to the writes of their own process (a model's ``post_save``), so what this process
changed shows on its next page; another process's write shows within the reuse time.

A ``Recent`` made with a ``page_part`` name is something pages show in their layout
(the alerts badge): a page that renders in the event loop takes every page part from
:func:`kept_page_parts` (None when one is not kept: it renders in a thread instead,
after :func:`read_page_parts`) and passes them in its context as ``PAGE_PARTS``, so the
tags that show them read nothing.

Kept answers are shared between threads: callers must not change them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings

T = TypeVar("T")

PAGE_PARTS = "page_parts"
"""the context variable holding the page parts a view read before rendering"""
_page_parts: dict[str, Recent[Any]] = {}


class Recent(Generic[T]):
    """``read()``'s last answer while younger than ``MQB_HEALTH_REUSE_SECONDS``."""

    def __init__(self, read: Callable[[], T], page_part: str | None = None) -> None:
        self._read = read
        if page_part is not None:
            _page_parts[page_part] = self
        self._lock = threading.Lock()
        self._kept: tuple[float, int, T] | None = None  # (read at, generation, answer)
        self._generation = 0
        self.reads = 0

    def get(self) -> T:
        max_age = float(settings.MQB_HEALTH_REUSE_SECONDS)
        with self._lock:
            kept, generation = self._kept, self._generation
        if max_age > 0 and kept is not None and time.monotonic() - kept[0] < max_age:
            return kept[2]
        started = time.monotonic()
        value = self._read()
        self.reads += 1
        if max_age > 0:
            with self._lock:
                # A forget() while reading: that read may have missed the write; not kept.
                if self._generation == generation:
                    self._kept = (started, generation, value)
        return value

    def peek(self) -> T | None:
        """The kept answer while it is young enough to be reused, else None; never reads
        (callers in the event loop, which must not touch the database)."""
        max_age = float(settings.MQB_HEALTH_REUSE_SECONDS)
        with self._lock:
            kept = self._kept
        if max_age > 0 and kept is not None and time.monotonic() - kept[0] < max_age:
            return kept[2]
        return None

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._kept = None


def kept_page_parts() -> dict[str, Any] | None:
    """Every page part's kept answer by name, or None when one is not kept (never reads)."""
    parts = {}
    for name, part in _page_parts.items():
        value = part.peek()
        if value is None:
            return None
        parts[name] = value
    return parts


def read_page_parts() -> dict[str, Any]:
    """Every page part, read where it is not kept (the database: in a thread)."""
    return {name: part.get() for name, part in _page_parts.items()}
