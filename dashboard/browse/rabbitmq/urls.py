"""URLs of the rabbitmq pages (included by dashboard/urls.py); their JSON API is a router
in dashboard/browse/rabbitmq/api.py.

Vhost, queue and exchange names go in the query string, never in the path:
names may hold ``/``, ``%``, spaces or anything else, and Django decodes
``%2F`` in paths before routing.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.browse.rabbitmq.views import exchanges, messages, queue, queues

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
]
