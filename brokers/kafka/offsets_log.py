"""Every consumer group's committed offsets, kept current by reading ``__consumer_offsets``.

A group's commits are records of the internal topic ``__consumer_offsets``
(key: group, topic, partition; value: the offset; a null value deletes it).
Reading that log once and then following it costs one consumer and the
commits as they happen, where asking every group (OffsetFetch) costs a
request per group per sample: 10,000 requests every 5 s at 10,000 groups.
The metrics sampler reads committed offsets from here once the log has been
read to its end, and from OffsetFetch before that, or when the log cannot be
read (no permission, a record version this module does not know).

Before a sample takes the offsets it asks for the log's end (ListOffsets,
read-committed) and waits, briefly, until the reader has got there: a commit
the broker acknowledged before the sample began is in the sample, as with
OffsetFetch. Commits made in a transaction count once the transaction commits
(``isolation.level=read_committed``); aborted ones never.

A reader is shared by every sampler of the same cluster in a process
(:func:`acquire`, :func:`release`) and outlives the last of them by
``LINGER_SECONDS``: a collector that loses its lease and takes it back, or
starts its loops again, does not read the whole log again.

Record formats (Kafka's ``OffsetCommitKey``, ``OffsetCommitValue``): a key is
an int16 version, then for versions 0 and 1 the group and topic (int16-length
strings) and the partition (int32); other key versions are group metadata and
the new consumer-group protocol's records, which carry no offsets. A value is
an int16 version (0 to 4 up to Kafka 4.1) and the offset (int64) right after it.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from brokers.kafka import Partition

log = logging.getLogger(__name__)

TOPIC = "__consumer_offsets"
KNOWN_VALUE_VERSIONS = range(0, 5)
"""``OffsetCommitValue`` versions whose offset is read (Kafka 4.1 writes up to 4)."""

CONSUMER_CONF: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
    "fetch.wait.max.ms": 100,
}
BATCH = 5000
"""records taken from librdkafka per call"""
RETRY_SECONDS = 5.0
"""wait between attempts while the topic does not exist yet or the cluster is down"""
LINGER_SECONDS = 300.0
"""how long a reader no sampler uses keeps following the log"""

_SHORT = struct.Struct(">h")
_INT = struct.Struct(">i")
_VALUE = struct.Struct(">hq")

Key = tuple[str, str, int]
"""(group, topic, partition)"""


class UnknownRecord(ValueError):
    """A record this module cannot read safely: the log is not used from then on."""


def _string(data: bytes, pos: int) -> tuple[str, int]:
    (length,) = _SHORT.unpack_from(data, pos)
    pos += 2
    if length < 0 or pos + length > len(data):
        raise struct.error("bad string length")
    return data[pos : pos + length].decode("utf-8"), pos + length


def offset_key(key: bytes | None) -> Key | None:
    """(group, topic, partition) of an offset-commit record; None for other records."""
    if not key or len(key) < 2:
        return None
    (version,) = _SHORT.unpack_from(key, 0)
    if version not in (0, 1):
        return None
    try:
        group, pos = _string(key, 2)
        topic, pos = _string(key, pos)
        (partition,) = _INT.unpack_from(key, pos)
    except (struct.error, UnicodeDecodeError) as exc:
        raise UnknownRecord(f"an offset-commit key that does not parse: {exc}") from None
    return group, topic, partition


def committed_offset(value: bytes) -> int:
    """The offset an offset-commit value records."""
    if len(value) < _VALUE.size:
        raise UnknownRecord(f"an offset-commit value of {len(value)} bytes")
    version, offset = _VALUE.unpack_from(value, 0)
    if version not in KNOWN_VALUE_VERSIONS:
        raise UnknownRecord(f"offset-commit value version {version} is not known here")
    return int(offset)


class OffsetsLog:
    """Follows ``__consumer_offsets`` in a thread of its own, from the beginning.

    ``ready`` once every partition was read to its end; ``failed`` says why the
    log is not used (then it stays not ready). ``committed(ids)`` copies the
    offsets of some groups; ``caught_up(ends)`` says whether the reader has read
    every partition up to the given offsets.
    """

    def __init__(self, client_config: Mapping[str, Any], *, name: str = "") -> None:
        conf = dict(client_config)
        conf.update(CONSUMER_CONF)
        # librdkafka wants a group id even for assign-only reads; this one
        # never joins and never commits.
        conf["group.id"] = f"mqboard-offsets-log-{uuid.uuid4().hex[:12]}"
        self._conf = conf
        self._lock = threading.Lock()
        self._groups: dict[str, dict[Partition, int]] = {}
        self._topics: dict[str, str] = {}
        self._positions: dict[int, int] = {}
        self._ended: set[int] = set()
        self._stop = threading.Event()
        self.partitions: tuple[int, ...] = ()
        self.ready = False
        self.failed = ""
        self.records = 0
        self._thread = threading.Thread(target=self._run, name=f"offsets-log-{name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop following; the consumer is closed by the reader's thread."""
        self._stop.set()

    @property
    def usable(self) -> bool:
        return self.ready and not self.failed

    def committed(self, ids: Iterable[str]) -> dict[str, dict[Partition, int]]:
        """Committed offsets of ``ids`` (a group with none maps to an empty dict)."""
        with self._lock:
            empty: dict[Partition, int] = {}
            return {gid: dict(self._groups.get(gid, empty)) for gid in ids}

    def caught_up(self, ends: Mapping[int, int]) -> bool:
        """Whether every partition in ``ends`` (partition -> offset) was read that far."""
        with self._lock:
            return all(self._positions.get(p, -1) >= end for p, end in ends.items())

    def _run(self) -> None:
        consumer: Consumer | None = None
        try:
            consumer = Consumer(self._conf)
            partitions = self._wait_for_topic(consumer)
            if not partitions:
                return
            consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in partitions])
            while not self._stop.is_set() and not self.failed:
                self._apply(consumer.consume(num_messages=BATCH, timeout=0.2))
        except (KafkaException, RuntimeError) as exc:
            self.failed = f"reading {TOPIC} failed: {exc}"
        finally:
            if self.failed:
                log.warning("committed offsets come from OffsetFetch: %s", self.failed)
            if consumer is not None:
                try:
                    consumer.close()
                except (KafkaException, RuntimeError) as exc:
                    log.debug("closing the offsets-log reader failed: %s", exc)

    def _wait_for_topic(self, consumer: Consumer) -> tuple[int, ...]:
        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(TOPIC, timeout=10)
            except KafkaException as exc:
                log.debug("%s metadata unavailable: %s", TOPIC, exc)
            else:
                found = metadata.topics.get(TOPIC)
                if found is not None and found.error is not None:
                    if found.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        self.failed = f"no permission to read {TOPIC}"
                        return ()
                elif found is not None and found.partitions:
                    self.partitions = tuple(sorted(found.partitions))
                    return self.partitions
            self._stop.wait(RETRY_SECONDS)
        return ()

    def _apply(self, messages: list[Any]) -> None:
        if not messages:
            return
        with self._lock:
            groups, topics = self._groups, self._topics
            for message in messages:
                partition = message.partition()
                error = message.error()
                if error is not None:
                    code = error.code()
                    if code == KafkaError._PARTITION_EOF:
                        self._positions[partition] = message.offset()
                        self._ended.add(partition)
                        if not self.ready and len(self._ended) >= len(self.partitions):
                            self.ready = True
                            log.info(
                                "%s read to its end: %d records, %d groups",
                                TOPIC,
                                self.records,
                                len(groups),
                            )
                    elif code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        self.failed = f"no permission to read {TOPIC}"
                    continue
                self._positions[partition] = message.offset() + 1
                self.records += 1
                try:
                    key = offset_key(message.key())
                    if key is None:
                        continue
                    group, topic, part = key
                    value = message.value()
                    if value is None:
                        offsets = groups.get(group)
                        if offsets is not None:
                            offsets.pop((topic, part), None)
                            if not offsets:
                                del groups[group]
                        continue
                    offset = committed_offset(value)
                except UnknownRecord as exc:
                    self.failed = f"{TOPIC} partition {partition} offset {message.offset()}: {exc}"
                    self.ready = False
                    return
                if offset < 0:
                    continue
                # One string per topic name, shared by every group's keys.
                topic = topics.setdefault(topic, topic)
                offsets = groups.get(group)
                if offsets is None:
                    offsets = groups[group] = {}
                offsets[(topic, part)] = offset


class _Shared:
    def __init__(self, reader: OffsetsLog) -> None:
        self.reader = reader
        self.users = 1
        self.timer: threading.Timer | None = None


_shared: dict[str, _Shared] = {}
_shared_lock = threading.Lock()


def _key(client_config: Mapping[str, Any]) -> str:
    """One cluster reached the same way (plain settings only; digested, since they hold secrets)."""
    plain = sorted(
        (k, v) for k, v in client_config.items() if isinstance(v, str | int | float | bool)
    )
    return hashlib.sha256(repr(plain).encode()).hexdigest()


def acquire(client_config: Mapping[str, Any], *, name: str = "") -> OffsetsLog:
    """The process's reader for this cluster, started if there is none (or it failed)."""
    key = _key(client_config)
    with _shared_lock:
        entry = _shared.get(key)
        if entry is not None and not entry.reader.failed:
            entry.users += 1
            if entry.timer is not None:
                entry.timer.cancel()
                entry.timer = None
            return entry.reader
        if entry is not None:
            entry.reader.close()
        reader = OffsetsLog(client_config, name=name)
        _shared[key] = _Shared(reader)
        return reader


def release(reader: OffsetsLog) -> None:
    """A sampler is done with ``reader``; the last one leaves it ``LINGER_SECONDS`` more."""
    with _shared_lock:
        for key, entry in _shared.items():
            if entry.reader is reader:
                entry.users -= 1
                if entry.users <= 0 and entry.timer is None:
                    entry.timer = threading.Timer(LINGER_SECONDS, _expire, (key, reader))
                    entry.timer.daemon = True
                    entry.timer.start()
                return
    reader.close()


def _expire(key: str, reader: OffsetsLog) -> None:
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None or entry.reader is not reader or entry.users > 0:
            return
        del _shared[key]
    reader.close()
