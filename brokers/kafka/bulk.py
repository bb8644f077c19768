"""Admin calls with one future per request, for the sampler's thousands of partitions and groups.

confluent-kafka's ``AdminClient`` methods hand librdkafka one future for the
whole request, then fan its answer out into a future per partition or group
(``list_offsets``: one per partition; ``describe_consumer_groups`` and
``list_consumer_group_offsets``: one per group). Each ``concurrent.futures.Future``
carries a ``threading.Condition``: at 15,000 partitions and 10,000 groups those
futures were about half of the collector's CPU time. These functions make the
same librdkafka calls through ``AdminClient``'s base class with the one future
and read its answer directly: a list in request order (groups) or a dict by
``TopicPartition`` (offsets), each item a result or a ``KafkaError``.

Limitation: this relies on confluent-kafka's C base class taking the request
future (checked on 2.16.1, which requirements.txt pins); a request is built
from names this package already validated, so the wrapper's input checks are
not repeated.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import _AdminClientImpl

Future = concurrent.futures.Future


def list_offsets(
    admin: AdminClient,
    partitions: list[tuple[str, int]],
    spec: Any,
    timeout: float,
    *,
    read_committed: bool = False,
) -> Future[Any]:
    """ListOffsets of ``partitions`` at ``spec`` (an ``OffsetSpec``); the answer is a
    dict ``TopicPartition -> ListOffsetsResultInfo | KafkaError``. ``read_committed``:
    the latest offset is the last stable one, short of any open transaction."""
    value = int(spec._value)
    request = [TopicPartition(t, p, value) for t, p in partitions]
    future: Future[Any] = Future()
    level = IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
    isolation = level.value
    _AdminClientImpl.list_offsets(
        admin, request, future, request_timeout=timeout, isolation_level_value=isolation
    )
    return future


def describe_groups(admin: AdminClient, group_ids: list[str], timeout: float) -> Future[Any]:
    """DescribeGroups; the answer lists a ``ConsumerGroupDescription | KafkaError`` per id."""
    future: Future[Any] = Future()
    _AdminClientImpl.describe_consumer_groups(admin, group_ids, future, request_timeout=timeout)
    return future


def group_offsets(admin: AdminClient, group_id: str, timeout: float) -> Future[Any]:
    """OffsetFetch of every partition of one group; the answer is a one-item list of
    ``ConsumerGroupTopicPartitions | KafkaError``."""
    future: Future[Any] = Future()
    request = [ConsumerGroupTopicPartitions(group_id)]
    _AdminClientImpl.list_consumer_group_offsets(admin, request, future, request_timeout=timeout)
    return future
