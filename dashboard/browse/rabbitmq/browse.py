"""Reads of RabbitMQ inventory: the queue list, a queue, exchanges and vhosts."""

from __future__ import annotations

from django.conf import settings

from brokers.rabbitmq.models import (
    MAX_PAGE_SIZE,
    ExchangeDetail,
    ExchangePage,
    QueueDetail,
    QueuePage,
    QueueQuery,
    Vhost,
)
from dashboard.browse.rabbitmq.access import rabbitmq_broker


async def get_queue_page(slug: str, query: QueueQuery) -> QueuePage:
    """One page of queues, in one management request unless type/state/DLX filters scan."""
    broker = await rabbitmq_broker(slug)
    return await broker.queue_page(query)


async def get_queue_detail(slug: str, vhost: str, name: str) -> QueueDetail:
    broker = await rabbitmq_broker(slug)
    return await broker.queue_detail(vhost, name, scan_limit=settings.MQB_RABBITMQ_SCAN_LIMIT)


async def get_exchange_page(
    slug: str, vhost: str | None, *, page: int = 1, page_size: int = 100, name: str = ""
) -> ExchangePage:
    broker = await rabbitmq_broker(slug)
    size = min(max(page_size, 1), MAX_PAGE_SIZE)
    return await broker.exchange_page(vhost, page=max(page, 1), page_size=size, name=name)


async def get_exchange_detail(slug: str, vhost: str, name: str) -> ExchangeDetail:
    broker = await rabbitmq_broker(slug)
    return await broker.exchange_detail(vhost, name)


async def get_vhosts(slug: str) -> tuple[Vhost, ...]:
    broker = await rabbitmq_broker(slug)
    return await broker.vhosts()
