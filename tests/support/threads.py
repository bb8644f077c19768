"""Which functions ``sync_to_async`` ran in a thread, recorded by name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from asgiref.sync import SyncToAsync


@contextmanager
def recording_hops() -> Iterator[list[str]]:
    """The qualified names of the functions ``sync_to_async`` runs, appended as they run."""
    names: list[str] = []
    original = SyncToAsync.thread_handler

    def counting(self: SyncToAsync, loop: object, *args: Any, **kwargs: Any) -> Any:  # type: ignore[type-arg]
        func = getattr(self.func, "func", self.func)  # a functools.partial's own
        names.append(getattr(func, "__qualname__", repr(func)))
        return original(self, loop, *args, **kwargs)

    with mock.patch.object(SyncToAsync, "thread_handler", counting):
        yield names
