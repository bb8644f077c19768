"""redis.asyncio commands that end when their task is cancelled, on Python 3.11 too.

redis-py sends every command through ``asyncio.wait_for(..., socket_timeout)``.
On Python 3.11, ``wait_for`` returns normally when the task is cancelled in the
same loop step that the wrapped send finishes, and the cancel is lost
(CPython gh-86296; fixed in 3.12, where ``wait_for`` is built on
``asyncio.timeout``; redis-py issue #2028). A loop of commands then never
ends: a websocket consumer cancelled while its channel-layer ``receive`` sends
its ``EVAL``/``BZPOPMIN`` keeps calling ``BZPOPMIN`` every 5 s for good, so
Daphne keeps the dead consumer and its Redis connection, and an event loop
closing under it (a test's) waits forever.

:func:`install` wraps ``send_packed_command`` of every redis.asyncio connection
(the channel layer's pools and the project's own clients): when a cancel was
asked for during the send and the send returned anyway, the connection is
dropped (the reply will not be read) and ``CancelledError`` is raised, as a
cancel anywhere else in the command would. On Python 3.12 and later it does
nothing. ``DashboardConfig.ready`` calls it, so every process has it.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from redis.asyncio.connection import AbstractConnection

Send = Callable[..., Coroutine[Any, Any, None]]
_MARK = "_mqb_keeps_cancel"


def keeping_cancel(send: Send) -> Send:
    """``send`` (a ``send_packed_command``) that raises a cancel ``wait_for`` swallowed."""

    @functools.wraps(send)
    async def send_packed_command(
        self: AbstractConnection, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        task = asyncio.current_task()
        asked = task.cancelling() if task is not None else 0
        await send(self, command, check_health)
        if task is not None and task.cancelling() > asked:
            await self.disconnect(nowait=True)
            raise asyncio.CancelledError

    setattr(send_packed_command, _MARK, True)
    return send_packed_command


def install() -> None:
    """Wrap redis.asyncio's ``send_packed_command`` once (Python 3.11 only)."""
    if sys.version_info >= (3, 12):
        return
    current: Any = AbstractConnection.send_packed_command
    if getattr(current, _MARK, False):
        return
    AbstractConnection.send_packed_command = keeping_cancel(current)  # type: ignore[method-assign]
