"""Kafka cluster, topics list and topic detail reads."""

from __future__ import annotations

from django.conf import settings

from brokers.kafka import groups as kafka_groups
from brokers.kafka import topics as kafka_topics
from brokers.kafka.models import KafkaCluster, TopicDetail, TopicPage, TopicReaders
from dashboard.browse.kafka.access import check_topic, get_kafka


async def get_kafka_cluster(slug: str) -> KafkaCluster:
    return await kafka_topics.cluster_info(await get_kafka(slug))


async def get_topic_page(
    slug: str, *, page: int = 1, name_filter: str = "", include_internal: bool = False
) -> TopicPage:
    return await kafka_topics.topic_page(
        await get_kafka(slug),
        page=page,
        per_page=settings.MQB_KAFKA_PAGE_SIZE,
        name_filter=name_filter,
        include_internal=include_internal,
    )


async def get_topic_detail(slug: str, topic: str) -> TopicDetail:
    check_topic(topic)
    return await kafka_topics.topic_detail(await get_kafka(slug), topic)


async def get_topic_readers(slug: str, topic: str) -> TopicReaders:
    check_topic(topic)
    return await kafka_groups.topic_readers(
        await get_kafka(slug), topic, max_groups=settings.MQB_KAFKA_TOPIC_GROUPS_MAX
    )
