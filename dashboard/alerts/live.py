"""Alerts as open pages see them: what changed, and how many fire, pushed over ``ws/alerts/``.

When alerts change (the engine starts, fires, resolves or drops them; someone
acknowledges one; a silence starts or ends over active ones), the writer hands the
changes to :func:`publish_on_commit`. Once the transaction commits, one
:class:`AlertsChanged` goes to the channel group :data:`ALERTS_GROUP`: per alert its
id, cluster, subject and state (never values, payloads or rule bodies), the counts of
pending and firing alerts not silenced, and those counts again for every subject the
changes touched. One evaluation is one message; an evaluation that changed nothing
sends none.

A *subject* is what an entity page shows alerts of: ``entity:<entity>`` for a queue's
or topic's kinds (the engine's entity: ``<vhost>/<name>`` for a RabbitMQ queue, the
name for a topic), ``dlq:<entity>`` for the dead-letter kinds (a RabbitMQ DLQ as
``<vhost>/<name>``, a Kafka DLQ topic by name),
``group:<id>`` for a consumer group's kinds. Nodes, clusters and jobs have no page
of their own and no subject.

Counts leave out alerts a silence matches now; the matching itself is the engine's
(``engine.silence_matcher``), handed in by the caller, so this module reads no
silences. A silence ending on its own (its time is up) is found by the collector after
its next sample (``hook.push_ended_silences``) and sent like an expired one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from dashboard.core.api import Out
from dashboard.core.events import Event
from dashboard.models import Alert, AlertRule

log = logging.getLogger("dashboard.alerts")

ALERTS_GROUP = "alerts"
MAX_CHANGES = 200
"""changes (and subjects) one message lists; past it, ``complete`` is false and pages ask
for their counts again"""
MAX_SUBJECTS = 20
"""subjects one socket may ask counts of"""

Kind = AlertRule.Kind
ACTIVE = (Alert.State.PENDING, Alert.State.FIRING)
GROUP_KINDS = frozenset(
    {Kind.GROUP_LAG, Kind.GROUP_LAG_SECONDS, Kind.GROUP_EMPTY, Kind.GROUP_DRAIN_SECONDS}
)
DLQ_KINDS = frozenset(
    {Kind.DLQ_PENDING, Kind.DLQ_OLDEST_AGE, Kind.DLQ_ARRIVALS, Kind.DLQ_CAME_BACK_RATIO}
)
ENTITY_KINDS = frozenset(
    {
        Kind.QUEUE_DEPTH,
        Kind.NO_CONSUMERS,
        Kind.NOT_DELIVERING,
        Kind.DEPTH_GROWTH,
        Kind.PARTITIONS_UNDER_REPLICATED,
        Kind.PARTITIONS_OFFLINE,
    }
)

Labels = dict[str, str]
Matcher = Callable[[Labels], bool]
"""Whether an active silence matches an alert's labels (rule, kind, cluster, entity)."""
ChangeName = Literal[
    "started", "fired", "resolved", "dropped", "acknowledged", "silenced", "unsilenced"
]


def subject(kind: str, entity: str) -> str | None:
    """The entity page an alert of ``kind`` on ``entity`` is shown on, or None."""
    if kind in GROUP_KINDS:
        return f"group:{entity}"
    if kind in DLQ_KINDS:
        return f"dlq:{entity}"
    if kind in ENTITY_KINDS:
        return f"entity:{entity}"
    return None


@dataclass(frozen=True)
class Change:
    """One alert's change: what it is now, and what happened to it."""

    alert_id: int
    cluster: str
    kind: str
    entity: str
    state: str
    change: ChangeName


# -- the messages ----------------------------------------------------------------------


class AlertCountsOut(Out):
    firing: int
    pending: int


class SubjectCountsOut(Out):
    cluster: str
    subject: str
    firing: int
    pending: int


class AlertChangeOut(Out):
    id: int
    cluster: str
    subject: str | None
    state: str
    change: str


class AlertsChanged(Event):
    """Alerts changed: the counts now, and what changed (at most :data:`MAX_CHANGES`)."""

    type: Literal["alerts.changed"] = "alerts.changed"
    counts: AlertCountsOut
    changes: list[AlertChangeOut]
    subjects: list[SubjectCountsOut]
    complete: bool


class AlertsCounts(Event):
    """The counts now, and those of the subjects the socket asked for (on connect)."""

    type: Literal["alerts.counts"] = "alerts.counts"
    counts: AlertCountsOut
    subjects: list[SubjectCountsOut]


# -- counting --------------------------------------------------------------------------


@dataclass
class Tally:
    """Pending and firing alerts a silence does not match: in all, and per subject."""

    firing: int = 0
    pending: int = 0
    by_subject: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def counts(self) -> AlertCountsOut:
        return AlertCountsOut(firing=self.firing, pending=self.pending)

    def of(self, cluster: str, name: str) -> SubjectCountsOut:
        firing, pending = self.by_subject.get((cluster, name), (0, 0))
        return SubjectCountsOut(cluster=cluster, subject=name, firing=firing, pending=pending)


def tally(matcher: Matcher, cluster: str | None = None) -> Tally:
    """Count the active alerts (one query), leaving out silenced ones; ``cluster``: only
    its alerts (a slug)."""
    rows = Alert.objects.filter(state__in=ACTIVE)
    if cluster is not None:
        rows = rows.filter(cluster__slug=cluster)
    found = Tally()
    for rule, kind, slug, entity, state in rows.values_list(
        "rule_name", "kind", "cluster__slug", "entity", "state"
    ):
        if matcher({"rule": rule, "kind": kind, "cluster": slug, "entity": entity}):
            continue
        firing = state == Alert.State.FIRING
        if firing:
            found.firing += 1
        else:
            found.pending += 1
        name = subject(kind, entity)
        if name is not None:
            pair = found.by_subject.setdefault((slug, name), [0, 0])
            pair[0 if firing else 1] += 1
    return found


def counts_message(matcher: Matcher, subjects: Iterable[tuple[str, str]]) -> AlertsCounts:
    found = tally(matcher)
    return AlertsCounts(
        counts=found.counts(), subjects=[found.of(cluster, name) for cluster, name in subjects]
    )


def changed_message(changes: Sequence[Change], matcher: Matcher) -> AlertsChanged:
    found = tally(matcher)
    shown = changes[:MAX_CHANGES]
    touched: dict[tuple[str, str], None] = {}
    for change in shown:
        name = subject(change.kind, change.entity)
        if name is not None:
            touched[(change.cluster, name)] = None
    return AlertsChanged(
        counts=found.counts(),
        changes=[
            AlertChangeOut(
                id=c.alert_id,
                cluster=c.cluster,
                subject=subject(c.kind, c.entity),
                state=c.state,
                change=c.change,
            )
            for c in shown
        ],
        subjects=[found.of(cluster, name) for cluster, name in touched],
        complete=len(changes) <= MAX_CHANGES,
    )


# -- publishing ------------------------------------------------------------------------


def publish(changes: Sequence[Change], matcher: Callable[[], Matcher]) -> None:
    """Count and send one message for these changes (from sync code, after the commit)."""
    if not changes:
        return
    try:
        message = changed_message(changes, matcher())
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(ALERTS_GROUP, message.as_json())
    except Exception:
        # The database is the truth: a lost push only delays pages until the next one.
        log.warning("alert changes not pushed to open pages", exc_info=True)


def publish_on_commit(changes: Sequence[Change], matcher: Callable[[], Matcher]) -> None:
    """Send one message for ``changes`` once the current transaction commits (none if
    there are none, or it rolls back). ``matcher`` is called then, to read silences as
    they are after the commit."""
    if changes:
        kept = tuple(changes)
        transaction.on_commit(lambda: publish(kept, matcher))
