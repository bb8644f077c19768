"""Live tails for the websocket consumers: the only way they reach ``brokers.<kind>.tail``.

``join_tail`` returns a :class:`Viewer` of the one tail of a queue or topic in
this process (started by the first viewer with the cluster kind's tap, stopped
when the last one calls :meth:`Viewer.leave`). Settings: ``MQB_TAIL_RATE``
(messages per second per viewer), ``MQB_TAIL_BUFFER`` and
``MQB_TAIL_BUFFER_BYTES`` (the RabbitMQ tap queue's caps), ``MQB_TAIL_PREVIEW``
(characters of a body shown), ``MQB_TAIL_MAX_RUNNING`` (distinct tails per
process; the per-user count, ``MQB_USER_MAX_TAILS``, is kept by the websocket).
"""

from __future__ import annotations

from django.conf import settings

from brokers.base.tail import TailOptions, TailSource
from brokers.registry import kind_of, require
from dashboard.core.clusters import get_cluster_config
from dashboard.core.connections import get_broker
from dashboard.tail.hub import Tail, TailKey, Viewer, join, running_tails

__all__ = ["Tail", "TailKey", "Viewer", "join_tail", "running_tails"]


async def join_tail(slug: str, name: str, *, vhost: str = "") -> Viewer:
    """Watch the messages flowing into queue or topic ``name`` (of ``vhost``) from now on.

    ConfigError for an unknown cluster, NotSupported when its kind has no tap.
    """
    config = get_cluster_config(slug)
    tap = require(config, lambda k: k.tap, "live tails")
    key = (
        (tap.entity, slug, vhost, name) if kind_of(config).has_vhosts else (tap.entity, slug, name)
    )
    options = TailOptions(
        rate=settings.MQB_TAIL_RATE,
        preview=settings.MQB_TAIL_PREVIEW,
        buffer=settings.MQB_TAIL_BUFFER,
        buffer_bytes=settings.MQB_TAIL_BUFFER_BYTES,
    )

    async def opener() -> TailSource:
        return await tap.open(await get_broker(slug), name, vhost=vhost, options=options)

    return await join(key, opener, settings.MQB_TAIL_RATE, settings.MQB_TAIL_MAX_RUNNING)
