"""Kafka cluster, topics list and topic detail reads."""

from __future__ import annotations

from django.conf import settings

from brokers.kafka.models import KafkaCluster, TopicDetail, TopicPage, TopicReaders
from dashboard.browse.kafka.access import check_topic, get_kafka


async def get_kafka_cluster(slug: str) -> KafkaCluster:
    topics = await get_kafka(slug)
    return await topics.cluster_info()


async def get_topic_page(
    slug: str, *, page: int = 1, name_filter: str = "", include_internal: bool = False
) -> TopicPage:
    topics = await get_kafka(slug)
    return await topics.topic_page(
        page=page,
        per_page=settings.MQB_KAFKA_PAGE_SIZE,
        name_filter=name_filter,
        include_internal=include_internal,
    )


async def get_topic_detail(slug: str, topic: str) -> TopicDetail:
    check_topic(topic)
    topics = await get_kafka(slug)
    return await topics.topic_detail(topic)


async def get_topic_readers(slug: str, topic: str) -> TopicReaders:
    check_topic(topic)
    topics = await get_kafka(slug)
    return await topics.topic_readers(topic, max_groups=settings.MQB_KAFKA_TOPIC_GROUPS_MAX)
