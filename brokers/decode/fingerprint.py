"""The grouping key of a failure: where it failed, why, and what was thrown.

Two dead letters belong to one group when they failed in the same place
(origin queue and exchange, or origin topic; the per-message routing key,
partition and offset are left out on purpose: they differ for every message
of the same failure), for the same reason, with the same exception class and
the same exception message once the parts that differ per message are
replaced by placeholders: UUIDs, timestamps, e-mail and IP addresses, hex
strings (``0x7f3a``, hashes, object ids) and numbers, also those that follow a
letter (``SKU-X6`` and ``SKU-X20`` read ``SKU-X<n>``).

The exception class takes part by its name alone, the last dotted component:
``InvalidPayload`` and ``demo.payloads.InvalidPayload`` are one failure (one
sender qualifies the class, another does not). Letters keep the full class.
"""

from __future__ import annotations

import hashlib
import re

VERSION = "2"  # bump when the rules change: groups of old and new rows will then differ
MAX_MESSAGE = 2000  # characters of an exception message that take part

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
     "<uuid>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
     "<time>"),
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b"), "<ip>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    # Hex runs of 8+ with at least one digit: ids and hashes, not English words.
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    # Numbers, also after a letter or underscore (ids like SKU-X6, item_42); a sign only
    # where it does not join a word (SKU-6 keeps its dash).
    (re.compile(r"(?:(?<![\w<])[-+])?(?<!\d)\d+([.,]\d+)*"), "<n>"),
    (re.compile(r"\s+"), " "),
)  # fmt: skip


def normalise_message(message: str) -> str:
    """The exception message with per-message details replaced by placeholders."""
    text = message[:MAX_MESSAGE]
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text.strip()


def class_name(exception_class: str) -> str:
    """The class's own name, without its module or package: what a group is keyed on."""
    return exception_class.strip().rpartition(".")[2]


def fingerprint(
    *,
    origin: str,
    reason: str,
    exception_class: str,
    exception_message: str,
    task_name: str = "",
) -> str:
    """A stable 32-hex-digit key: same origin, reason, exception and message shape, same key.

    ``origin`` is a string that names where the message failed (built by
    :class:`FailureInfo`); ``task_name`` separates Celery tasks that fail in
    one queue.
    """
    parts = (
        VERSION,
        origin,
        task_name,
        reason.lower(),
        class_name(exception_class),
        normalise_message(exception_message),
    )
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace"))
    return digest.hexdigest()[:32]
