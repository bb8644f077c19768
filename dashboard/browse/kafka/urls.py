"""URLs of the kafka pages and their JSON API (included by dashboard/urls.py).

Group ids may contain slashes, so they come last (``<path:group>``) and the
reset page puts its verb before the id. A record's partition and offset are
``<signed:...>``: a negative or huge one reaches the view, which answers 400
saying why, where Django's ``int`` would answer 404.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, register_converter

from dashboard.api.kafka import reads as api_reads
from dashboard.api.kafka import writes as api_writes
from dashboard.browse.kafka.views import groups, messages, topics, writes


class SignedInt:
    regex = r"-?[0-9]+"

    def to_python(self, value: str) -> int:
        if len(value.lstrip("-")) > 19:  # past any 64-bit number: not worth converting
            return -(2**64) if value.startswith("-") else 2**64
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(SignedInt, "signed")

K = "clusters/<slug:cluster>/kafka"
A = "api/clusters/<slug:cluster>/kafka"

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
    # JSON API
    path(A, api_reads.cluster, name="api-kafka-cluster"),
    path(f"{A}/topics", api_reads.topics, name="api-kafka-topics"),
    path(f"{A}/topics/<str:topic>", api_reads.topic, name="api-kafka-topic"),
    path(f"{A}/topics/<str:topic>/groups", api_reads.topic_groups, name="api-kafka-topic-groups"),
    path(f"{A}/topics/<str:topic>/messages", api_reads.messages, name="api-kafka-messages"),
    path(
        f"{A}/topics/<str:topic>/messages/<signed:partition>/<signed:offset>",
        api_reads.record,
        name="api-kafka-record",
    ),
    path(f"{A}/topics/<str:topic>/purge", api_writes.purge, name="api-kafka-purge"),
    path(f"{A}/groups", api_reads.groups, name="api-kafka-groups"),
    path(f"{A}/groups/<path:group>", api_reads.group, name="api-kafka-group"),
    path(f"{A}/reset-offsets/<path:group>", api_writes.reset_offsets, name="api-kafka-reset"),
]
