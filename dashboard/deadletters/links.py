"""Where the dead-letter pages link to: the inbox filtered, and a DLQ or cluster in the browser.

Which browser page shows a DLQ follows from what its broker kind can do: a kind with a
queue browser shows a queue by vhost and name (in the query string: names may hold ``/``
or ``%``), a kind with a topic browser shows a topic by name. No kind name is compared.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.http import urlencode

from brokers.base.contract import BrokerKind


def inbox_url(**params: str) -> str:
    """The inbox filtered by ``params`` (``cluster``, ``dlq``, ``origin`` …)."""
    query = urlencode({k: v for k, v in params.items() if v})
    path = reverse("deadletters-inbox")
    return f"{path}?{query}" if query else path


def browse_url(kind: BrokerKind, cluster: str, vhost: str, name: str) -> str:
    """The queue or topic page of ``name``; "" when the kind has no browser for it."""
    if kind.queues is not None:
        query = urlencode({"vhost": vhost, "name": name})
        return f"{reverse('rabbitmq-queue', args=[cluster])}?{query}"
    if kind.topics is not None and name and "/" not in name:
        return reverse("kafka-topic", args=[cluster, name])
    return ""


def cluster_url(kind: BrokerKind, cluster: str) -> str:
    """The cluster's page in the browser: its queues, or its topics and groups."""
    if kind.queues is not None:
        return reverse("rabbitmq-queues", args=[cluster])
    if kind.topics is not None:
        return reverse("kafka-cluster", args=[cluster])
    return ""
