"""Browsing Kafka: topics, records, consumer groups; produce, purge, offset resets.

The only Django code that calls ``brokers.kafka``. ``get_*`` read, ``do_*`` write
(role check, audit entry, then the broker call); HTML views and the JSON API both
call these: ``access`` (the adapter, roles, audit, bounded parameters),
``topics``, ``messages`` (browsing records), ``groups`` (and offset resets),
``writes`` (produce, purge). ``views/`` holds the HTML pages and ``urls`` their
routes; ``api`` is the JSON API's router, ``schemas`` its typed requests and
answers and ``serialize`` how records become JSON. The services are re-exported here.
"""

from __future__ import annotations

from brokers.base import BrokerError, NotFound
from brokers.decode import Decoded
from brokers.kafka.group_models import GroupSummary
from brokers.kafka.models import TopicReaders, TopicSummary
from dashboard.browse.kafka.access import get_kafka, kafka_slugs
from dashboard.browse.kafka.groups import (
    OffsetReset,
    do_reset_offsets,
    get_group_detail,
    get_group_list,
    get_group_page,
    parse_offset_reset,
    preview_offset_reset,
)
from dashboard.browse.kafka.messages import (
    BrowseQuery,
    MessagePage,
    RecordView,
    get_messages,
    get_record,
    get_record_bytes,
    parse_browse_query,
)
from dashboard.browse.kafka.topics import (
    get_kafka_cluster,
    get_topic_detail,
    get_topic_list,
    get_topic_page,
    get_topic_readers,
)
from dashboard.browse.kafka.writes import (
    RecordToProduce,
    do_produce,
    do_purge_topic,
    parse_produce_form,
    parse_produce_json,
)

__all__ = [
    "BrokerError",
    "BrowseQuery",
    "Decoded",
    "GroupSummary",
    "MessagePage",
    "NotFound",
    "OffsetReset",
    "RecordToProduce",
    "RecordView",
    "TopicReaders",
    "TopicSummary",
    "do_produce",
    "do_purge_topic",
    "do_reset_offsets",
    "get_group_detail",
    "get_group_list",
    "get_group_page",
    "get_kafka",
    "get_kafka_cluster",
    "get_messages",
    "get_record",
    "get_record_bytes",
    "get_topic_detail",
    "get_topic_list",
    "get_topic_page",
    "get_topic_readers",
    "kafka_slugs",
    "parse_browse_query",
    "parse_offset_reset",
    "parse_produce_form",
    "parse_produce_json",
    "preview_offset_reset",
]
