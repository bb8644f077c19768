"""Applying retry policies to letters as they are captured (in the capture transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def apply_at_capture(cluster_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """Evaluate the enabled rules, in order, on the newly stored ``rows``; how many acted."""
    return 0
