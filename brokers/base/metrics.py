"""The metrics capability: a kind makes the sampler of one cluster."""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    """Makes the sampler that reads one cluster's depths, rates, lag and consumers."""
