"""Channel group names for live updates: one function everyone uses.

Channels accepts group names of ASCII letters, digits, ``-``, ``_`` and ``.``
only, shorter than 100 characters. Broker names are anything (``/`` in
vhosts, spaces and Unicode in queue names, slashes in group ids), so a part
that is not plainly safe is replaced by ``_`` + a hash of it. A safe part
never starts with ``_``, so a hashed part can never equal a real name, and
``.`` is never inside a part, so ``a.b`` + ``c`` and ``a`` + ``b.c`` differ.
A name that would still be too long is hashed as a whole.

    group_name("cluster", "local-rabbitmq")           -> "cluster.local-rabbitmq"
    group_name("queue", "local-rabbitmq", "/", "q1")  -> "queue.local-rabbitmq._8a5e...q1"
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 99
_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def safe_part(part: str) -> str:
    """``part`` itself when it is plainly safe, else ``_`` and 20 hex digits of its hash."""
    if _SAFE_PART.fullmatch(part):
        return part
    return "_" + _digest(part, 20)


def group_name(kind: str, *parts: str) -> str:
    """The channel group of ``kind`` (cluster, queue, topic, group, job...) and its parts."""
    if not _SAFE_PART.fullmatch(kind):
        raise ValueError(f"group kind {kind!r} must be a plain word")
    name = ".".join((kind, *(safe_part(p) for p in parts)))
    if len(name) <= MAX_LENGTH:
        return name
    # Every part hashed, joined with a separator no part contains, hashed again.
    return f"{kind}._{_digest(chr(0).join(parts), 40)}"


def cluster_group(cluster: str) -> str:
    return group_name("cluster", cluster)


def queue_group(cluster: str, vhost: str, name: str) -> str:
    return group_name("queue", cluster, vhost, name)


def topic_group(cluster: str, topic: str) -> str:
    return group_name("topic", cluster, topic)


def consumer_group_group(cluster: str, group: str) -> str:
    """The channel group of a Kafka consumer group (``group.<cluster>.<group>``)."""
    return group_name("group", cluster, group)


def job_group(job_id: int | str) -> str:
    return group_name("job", str(job_id))
