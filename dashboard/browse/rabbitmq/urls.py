"""URLs of the rabbitmq pages and their JSON API (included by dashboard/urls.py).

Vhost, queue and exchange names go in the query string, never in the path:
names may hold ``/``, ``%``, spaces or anything else, and Django decodes
``%2F`` in paths before routing.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.api.rabbitmq import reads as api_reads
from dashboard.api.rabbitmq import writes as api_writes
from dashboard.browse.rabbitmq.views import exchanges, messages, queue, queues

API = "api/clusters/<slug:slug>/rabbitmq"

urlpatterns: list[URLPattern | URLResolver] = [
    path("rabbitmq/", queues.all_queues, name="rabbitmq-queues-all"),
    path("rabbitmq/<slug:slug>/", queues.queue_list, name="rabbitmq-queues"),
    path("rabbitmq/<slug:slug>/queue", queue.queue_detail, name="rabbitmq-queue"),
    path("rabbitmq/<slug:slug>/queue/messages", messages.peek, name="rabbitmq-peek"),
    path("rabbitmq/<slug:slug>/queue/purge", queue.purge, name="rabbitmq-purge"),
    path("rabbitmq/<slug:slug>/exchanges", exchanges.exchange_list, name="rabbitmq-exchanges"),
    path("rabbitmq/<slug:slug>/exchange", exchanges.exchange_detail, name="rabbitmq-exchange"),
    path("rabbitmq/<slug:slug>/publish", exchanges.publish, name="rabbitmq-publish"),
    path("rabbitmq/<slug:slug>/vhosts", exchanges.vhost_list, name="rabbitmq-vhosts"),
    path(f"{API}/queues", api_reads.queues, name="api-rabbitmq-queues"),
    path(f"{API}/queue", api_reads.queue, name="api-rabbitmq-queue"),
    path(f"{API}/queue/peek", api_writes.peek, name="api-rabbitmq-peek"),
    path(f"{API}/queue/purge", api_writes.purge, name="api-rabbitmq-purge"),
    path(
        f"{API}/peeked/<str:token>/<int:position>",
        api_writes.peeked_body,
        name="api-rabbitmq-peeked-body",
    ),
    path(f"{API}/exchanges", api_reads.exchanges, name="api-rabbitmq-exchanges"),
    path(f"{API}/exchange", api_reads.exchange, name="api-rabbitmq-exchange"),
    path(f"{API}/publish", api_writes.publish, name="api-rabbitmq-publish"),
    path(f"{API}/vhosts", api_reads.vhosts, name="api-rabbitmq-vhosts"),
]
