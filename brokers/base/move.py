"""The mover capability: moving messages from one queue to another."""

from __future__ import annotations

from typing import Protocol


class Mover(Protocol):
    """Moves messages from a queue to a queue or an exchange, one confirmed batch at a time."""
