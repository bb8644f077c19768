"""The overview page: one card per cluster, from the last stored check, kept fresh over a
websocket.

The page says which collector leads (host, pid, since when, its lease token) and how
many stand by (``core.leader``). The page opens no broker connection: each card shows
the collector's last check of its cluster with its age (stale past
``MQB_HEALTH_STALE_AFTER``, "not checked yet" before the first), and operators get a
*check now* button (``checks.check_now``: one shared live check per cluster at a time).
Which collector leads is read at most once per ``MQB_HEALTH_REUSE_SECONDS`` (``core.recent``),
like the checks.
Each card shows the counts its cluster's kind names (``BrokerKind.overview_counts``), as
``data-field`` elements the page's script refills from the websocket, and links to the
cluster's own page. What needs attention on a cluster that answers (``attention_of``: a
node's resource alarm, under-replicated or offline partitions) is written out as text,
each with a link to where it is: the node's page in the management UI, the topics
holding the partitions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import Count
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from brokers.base.contract import BrokerKind
from brokers.registry import kind_named
from dashboard.core import clusters, display, letter_counts, once
from dashboard.core.audit import audit, require_role
from dashboard.core.clusters import ClusterHealth
from dashboard.core.leader import CollectorStatus, get_collector_status
from dashboard.core.login import role_is_kept, shown_role
from dashboard.core.recent import PAGE_PARTS, Recent, kept_page_parts, read_page_parts
from dashboard.core.roles import ADMIN, OPERATOR
from dashboard.models import DeadLetter
from dashboard.overview.checks import check_now
from dashboard.overview.recent import recent_health

CHECK = "cluster.check"
collector_status: Recent[CollectorStatus] = Recent(get_collector_status)
display.register("stale", "Stale", display.WARN)


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
    attention: tuple[Attention, ...] = ()
    """what needs attention, from the last check"""
    topic_url: str = ""
    """a topic's page with ``__topic__`` for its name (kinds that browse topics), for the script"""


@dataclass(frozen=True)
class Attention:
    """One thing that needs attention, as text, with links to where it is: (label, url)."""

    text: str
    links: tuple[tuple[str, str], ...] = ()


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def attention_of(health: ClusterHealth, topic_url: str) -> tuple[Attention, ...]:
    """Resource alarms of nodes and partitions without enough replicas or a leader."""
    overview = health.overview
    if overview is None:
        return ()
    found: list[Attention] = []
    manages = health.address.startswith(("http://", "https://"))
    for node in overview.nodes:
        for alarm in node.alarms:
            link = f"{health.address.rstrip('/')}/#/nodes/{quote(node.name, safe='')}"
            found.append(
                Attention(
                    f"{alarm} alarm on {node.name}: publishers are blocked",
                    (("node", link),) if manages else (),
                )
            )
    topics = tuple(
        (name, topic_url.replace("__topic__", quote(name, safe=""))) if topic_url else (name, "")
        for name in overview.replication_topics
    )
    if overview.offline_partitions:
        found.append(Attention(_plural(overview.offline_partitions, "offline partition"), topics))
    if overview.under_replicated_partitions:
        found.append(
            Attention(
                _plural(overview.under_replicated_partitions, "under-replicated partition"),
                topics,
            )
        )
    return tuple(found)


def cluster_page(slug: str, kind: BrokerKind) -> str | None:
    """The page a cluster's card links to, chosen by what the kind can browse."""
    if kind.queues is not None:
        return reverse("rabbitmq-queues", args=[slug])
    if kind.topics is not None:
        return reverse("kafka-cluster", args=[slug])
    return None


def count_pending_letters() -> dict[str, int]:
    """Pending dead letters in the inbox, per cluster slug (the database, not the brokers:
    a drained RabbitMQ DLQ and a Kafka DLQ that keeps its records count alike)."""
    rows = (
        DeadLetter.objects.filter(status=DeadLetter.Status.PENDING)
        .values("cluster__slug")
        .annotate(n=Count("pk"))
    )
    return {row["cluster__slug"]: row["n"] for row in rows}


PENDING = "overview.pending"


def pending_letters(stamp: tuple[object, ...] | None = None) -> dict[str, int]:
    """``count_pending_letters``, reused while no letter changed (read only)."""
    return letter_counts.reuse(PENDING, count_pending_letters, stamp)


@functools.cache
def _card_urls(slug: str, kind_name: str) -> tuple[str | None, str, str]:
    """A card's links (its cluster's page, its pending letters in the inbox, a topic's
    page with ``__topic__``), reversed once per cluster and process."""
    kind = kind_named(kind_name)
    inbox = reverse("deadletters-inbox") + "?" + urlencode({"cluster": slug, "status": "pending"})
    topic_url = reverse("kafka-topic", args=[slug, "__topic__"]) if kind.topics is not None else ""
    return cluster_page(slug, kind), inbox, topic_url


@receiver(setting_changed)
def _urls_changed(setting: str, **kwargs: object) -> None:
    if setting == "ROOT_URLCONF":
        _card_urls.cache_clear()


def card_of(health: ClusterHealth, pending: int = 0) -> Card:
    overview = health.overview
    kind = kind_named(health.kind)
    counts = tuple(
        (field, label, getattr(overview, field) if overview is not None else None)
        for field, label in kind.overview_counts
    )
    page, inbox, topic_url = _card_urls(health.slug, health.kind)
    return Card(
        health,
        counts,
        page,
        pending,
        inbox,
        attention_of(health, topic_url),
        topic_url,
    )


def _render(
    request: HttpRequest,
    health: list[ClusterHealth],
    pending: dict[str, int],
    status: CollectorStatus,
    parts: dict[str, Any],
) -> HttpResponse:
    """The page from what is already read: nothing here touches the database."""
    cards = [card_of(h, pending.get(h.slug, 0)) for h in health]
    names = {h.slug: h.name for h in health}
    context = {
        "cards": cards,
        "can_check": shown_role(request.user) in (OPERATOR, ADMIN),  # the POST checks again
        "checked": names.get(request.GET.get("checked", "")),
        "stale_after": settings.MQB_HEALTH_STALE_AFTER,
        "collector": status,
        PAGE_PARTS: parts,
    }
    return render(request, "dashboard/overview.html", context)


def _page(
    request: HttpRequest, health: list[ClusterHealth], stamp: tuple[object, ...] | None = None
) -> HttpResponse:
    """The page in a thread: reads what is not kept (counts, collector status, page parts)."""
    pending = pending_letters(stamp)
    return _render(request, health, pending, collector_status.get(), read_page_parts())


async def overview(request: HttpRequest) -> HttpResponse:
    """Rendered in the event loop when the letters' counts (for a stamp read after the
    request came), the collector's status, the page parts (the alerts badge) and the
    user's role are all kept; else in a thread
    that reads what is missing. Under fifty viewers nearly every view is the former."""
    health = await recent_health()
    stamp = await letter_counts.astamp()
    pending = letter_counts.kept(PENDING, stamp)
    status = collector_status.peek()
    parts = kept_page_parts()
    kept_role = role_is_kept(request.user)
    if pending is letter_counts.NOT_KEPT or status is None or parts is None or not kept_role:
        response: HttpResponse = await sync_to_async(_page)(request, health, stamp)
        return response
    return _render(request, health, pending, status, parts)


@require_POST
async def check(request: HttpRequest, slug: str) -> HttpResponse:
    """*Check now* from the page (operator): the shared live check, then back to the card."""
    if slug not in {c.slug for c in clusters.get_cluster_configs()}:
        raise Http404(f"no cluster named {slug!r}")
    user = await request.auser()
    await require_role(user, OPERATOR, action=CHECK, slug=slug, target=slug, request=request)

    async def write() -> str:
        health = await check_now(slug)
        await audit(
            action=CHECK,
            user=user,
            slug=slug,
            target=slug,
            parameters={"source": health.source},
            detail=health.code,
            request=request,
        )
        return reverse("overview") + "?" + urlencode({"checked": slug}) + f"#cluster-{slug}"

    return await once.redirect_once(request, CHECK, write, busy=reverse("overview"), status=303)
