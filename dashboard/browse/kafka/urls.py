"""URLs of the kafka pages (included by dashboard/urls.py); their API: browse/kafka/api.py.

Group ids may contain slashes, so they come last (``<path:group>``) and the
reset page puts its verb before the id. A record's partition and offset are
``<signed:...>`` (``dashboard.core.converters``): a negative or huge one
reaches the view, which answers 400 saying why.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.browse.kafka.views import groups, messages, topics, writes
from dashboard.core import converters  # noqa: F401  registers <signed:...>

K = "clusters/<slug:cluster>/kafka"

urlpatterns: list[URLPattern | URLResolver] = [
    path("kafka/", topics.kafka_home, name="kafka-topics-all"),
    path(f"{K}/", topics.cluster_page, name="kafka-cluster"),
    path(f"{K}/topics/", topics.topics_page, name="kafka-topics"),
    path(f"{K}/topics/<str:topic>/", topics.topic_page, name="kafka-topic"),
    path(f"{K}/topics/<str:topic>/messages/", messages.messages_page, name="kafka-messages"),
    path(
        f"{K}/topics/<str:topic>/records/<signed:partition>/<signed:offset>/<str:part>",
        messages.download_record,
        name="kafka-record-download",
    ),
    path(f"{K}/topics/<str:topic>/produce/", writes.produce_page, name="kafka-produce"),
    path(f"{K}/topics/<str:topic>/purge/", writes.purge_page, name="kafka-purge"),
    path(f"{K}/groups/", groups.groups_page, name="kafka-groups"),
    path(f"{K}/groups/<path:group>", groups.group_page, name="kafka-group"),
    path(f"{K}/reset-offsets/<path:group>", groups.reset_offsets_page, name="kafka-reset-offsets"),
]
