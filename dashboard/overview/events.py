"""The overview's live message: one cluster's health, as the collector checks it.

The collector pushes :class:`ClusterHealthEvent` to the overview group and to
``cluster.<slug>``; the overview and cluster metrics websockets parse it and
send it on. Its ``health`` is the API's ``ClusterHealthOut``, so the page's
live update and ``/api/clusters/health`` describe a cluster the same way.
"""

from __future__ import annotations

from typing import Literal

from dashboard.core.clusters import ClusterHealth
from dashboard.core.events import Event
from dashboard.overview.api import ClusterHealthOut


class ClusterHealthEvent(Event):
    type: Literal["cluster.health"] = "cluster.health"
    health: ClusterHealthOut

    @classmethod
    def of_health(cls, health: ClusterHealth) -> ClusterHealthEvent:
        return cls(health=ClusterHealthOut.model_validate(health.as_json()))
