"""Browsing RabbitMQ: queues, a queue and its messages, exchanges, vhosts; publish and purge.

Services for the pages and the JSON API, ``get_*`` read, ``do_*`` write:
``access`` (the adapter, roles, refusals, audit), ``browse`` (queue, exchange and
vhost pages), ``query`` (page parameters), ``peek`` / ``peek_store`` (reading
messages without losing them), ``message_input`` and ``writes`` (publish, purge).
``views/`` holds the HTML pages and ``urls`` their routes; ``api`` is the JSON API's
router and ``schemas`` its typed requests and answers.

The services and result types are re-exported here so that views and API views
never import ``brokers`` themselves.
"""

from __future__ import annotations

from brokers.base import BrokerError, NotFound, NotSupported
from brokers.decode import DeathEvent, Decoded, HeaderValue
from brokers.rabbitmq.models import (
    MAX_PAGE_SIZE,
    QUEUE_SORTS,
    QUEUE_STATES,
    QUEUE_TYPES,
    STATS_SORTS,
    Binding,
    Consumer,
    DeadLetterLink,
    ExchangeDetail,
    ExchangePage,
    ExchangeRow,
    OutgoingMessage,
    PeekedMessage,
    PeekPlan,
    PeekRefused,
    PeekResult,
    PublishResult,
    PurgeResult,
    QueueDetail,
    QueuePage,
    QueueQuery,
    QueueRow,
    ScanInfo,
    Vhost,
)
from dashboard.browse.rabbitmq.access import get_rabbitmq_config, get_rabbitmq_configs
from dashboard.browse.rabbitmq.browse import (
    get_exchange_detail,
    get_exchange_page,
    get_queue_detail,
    get_queue_page,
    get_vhosts,
)
from dashboard.browse.rabbitmq.message_input import BODY_ENCODINGS, build_outgoing_message
from dashboard.browse.rabbitmq.peek import (
    ConfirmationRequired,
    MessageView,
    PeekView,
    do_peek_messages,
    get_peek_plan,
    get_peeked_body,
    get_queue_summary,
    is_peek_confirmed,
    peek_data,
    peek_for_page,
    peek_refusal,
)
from dashboard.browse.rabbitmq.query import PAGE_SIZES, parse_queue_query, query_string, truthy
from dashboard.browse.rabbitmq.writes import do_publish_message, do_purge_queue

__all__ = [
    "BODY_ENCODINGS",
    "MAX_PAGE_SIZE",
    "PAGE_SIZES",
    "QUEUE_SORTS",
    "QUEUE_STATES",
    "QUEUE_TYPES",
    "STATS_SORTS",
    "Binding",
    "BrokerError",
    "ConfirmationRequired",
    "Consumer",
    "DeadLetterLink",
    "DeathEvent",
    "Decoded",
    "ExchangeDetail",
    "ExchangePage",
    "ExchangeRow",
    "HeaderValue",
    "MessageView",
    "NotFound",
    "NotSupported",
    "OutgoingMessage",
    "PeekPlan",
    "PeekRefused",
    "PeekResult",
    "PeekView",
    "PeekedMessage",
    "PublishResult",
    "PurgeResult",
    "QueueDetail",
    "QueuePage",
    "QueueQuery",
    "QueueRow",
    "ScanInfo",
    "Vhost",
    "build_outgoing_message",
    "do_peek_messages",
    "do_publish_message",
    "do_purge_queue",
    "get_exchange_detail",
    "get_exchange_page",
    "get_peek_plan",
    "get_peeked_body",
    "get_queue_detail",
    "get_queue_page",
    "get_queue_summary",
    "get_rabbitmq_config",
    "get_rabbitmq_configs",
    "get_vhosts",
    "is_peek_confirmed",
    "parse_queue_query",
    "peek_data",
    "peek_for_page",
    "peek_refusal",
    "query_string",
    "truthy",
]
