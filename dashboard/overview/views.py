"""The overview page: one card per cluster, checked live, then kept fresh over a websocket.

Each card shows the counts its cluster's kind names (``BrokerKind.overview_counts``),
as ``data-field`` elements the page's script refills from the websocket, and links to
the cluster's own page.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from brokers.base.contract import BrokerKind
from brokers.registry import kind_named
from dashboard.core.clusters import ClusterHealth, get_all_cluster_health
from dashboard.models import DeadLetter


@dataclass(frozen=True)
class Card:
    """One cluster's health and the (field, label, value) counts its kind shows."""

    health: ClusterHealth
    counts: tuple[tuple[str, str, int | None], ...]
    url: str | None
    """the cluster's own page: its queues where its kind browses queues, else its topics'"""
    pending: int = 0
    """dead letters of the cluster waiting in the inbox (captured, not yet acted on)"""
    inbox_url: str = ""
    """the inbox, filtered to those letters"""


def cluster_page(slug: str, kind: BrokerKind) -> str | None:
    """The page a cluster's card links to, chosen by what the kind can browse."""
    if kind.queues is not None:
        return reverse("rabbitmq-queues", args=[slug])
    if kind.topics is not None:
        return reverse("kafka-cluster", args=[slug])
    return None


def pending_letters() -> dict[str, int]:
    """Pending dead letters in the inbox, per cluster slug (the database, not the brokers:
    a drained RabbitMQ DLQ and a Kafka DLQ that keeps its records count alike)."""
    rows = (
        DeadLetter.objects.filter(status=DeadLetter.Status.PENDING)
        .values("cluster__slug")
        .annotate(n=Count("pk"))
    )
    return {row["cluster__slug"]: row["n"] for row in rows}


def card_of(health: ClusterHealth, pending: int = 0) -> Card:
    overview = health.overview
    kind = kind_named(health.kind)
    counts = tuple(
        (field, label, getattr(overview, field) if overview is not None else None)
        for field, label in kind.overview_counts
    )
    inbox = (
        reverse("deadletters-inbox")
        + "?"
        + urlencode({"cluster": health.slug, "status": "pending"})
    )
    return Card(health, counts, cluster_page(health.slug, kind), pending, inbox)


async def overview(request: HttpRequest) -> HttpResponse:
    health = await get_all_cluster_health()
    pending = await sync_to_async(pending_letters)()
    cards = [card_of(h, pending.get(h.slug, 0)) for h in health]
    return await sync_to_async(render)(request, "dashboard/overview.html", {"cards": cards})
