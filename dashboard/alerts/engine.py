"""The alert engine: after each sample of a cluster, move its alerts along.

Per rule and entity (one *fingerprint*: rule, cluster, entity; at most one pending
or firing alert each, a database constraint):

* the condition holds and no alert is active: a ``pending`` alert starts (firing at
  once when the rule's ``for_seconds`` is 0);
* pending and the condition has held ``for_seconds``: ``firing``, notified;
* pending and the condition stops holding: the pending alert is dropped (it never fired);
* firing and the value is back past the resolve threshold (hysteresis): ``resolved``,
  notified when its firing was;
* firing and ``repeat_seconds`` since the last notification: notified again; a firing
  alert never notified (silenced, or its channels added later) is notified as firing
  once nothing silences it.

An unknown value (None) changes nothing. An entity a full sample no longer shows
(deleted, or no longer matched by its rule), and the alerts of rules disabled or
deleted, resolve. A failed sample evaluates only ``cluster_unavailable`` rules: the
other alerts keep their state until the cluster is sampled again.

Notifications are rows of the outbox (``AlertNotification``), one per enabled channel
of the rule, written in the same transaction as the state change; the sender
(``delivery``) takes them from there. A silence matching the alert's labels (rule,
kind, cluster, entity: globs) writes none. Each row carries its *group key*, the
rule and the cluster (:func:`group_key`): the sender sends the due rows of one group
to one channel as one message, and :func:`group_due` sets when a row is due so that
they fall due together (``MQB_ALERTS_GROUP_WAIT`` after the first, later changes at
most every ``MQB_ALERTS_GROUP_INTERVAL``).

Once the transaction commits, open pages hear of the evaluation's changes in one
message (``live``); an evaluation that changed nothing sends none.

Values per kind: ``queue_depth`` a queue's or topic's depth; ``no_consumers`` a
queue's consumers (fires at 0); ``group_lag`` / ``group_lag_seconds`` a consumer
group's lag; ``dlq_pending`` / ``dlq_oldest_age`` the captured letters still pending
per DLQ (one grouped query), their count and the age in seconds of the oldest;
``cluster_unavailable`` 1 when the sample failed, else 0. The rule's
``window_seconds`` is the window of:

* ``dlq_arrivals``: letters captured per DLQ in the window (one grouped query per
  distinct window);
* ``dlq_came_back_ratio``: of the letters of a DLQ requeued in the window, the share
  that came back (failed again), 0 to 1; no requeue in the window, no value;
* ``depth_growth``: a queue's or topic's depth now minus its depth one window ago,
  from the depths this process remembers per cluster (only of entities a growth rule
  matches); no value until the process has seen a whole window;
* ``job_failed``: 1 per job of the cluster that failed within the window (the
  entity ``<job kind> #<id>``, the pattern matched against the job's kind); the
  alert resolves once the failure is older than the window.

``not_delivering`` is 1 for a queue with messages ready and a delivery rate of 0
(or no rate reported and no consumer), and for a topic some consumer group of
which lags and consumes nothing, else 0 (its ``for_seconds`` is the N seconds).
``group_drain_seconds`` is a group's lag over its consume rate (0 without lag;
``NEVER`` seconds when it lags and consumes nothing). ``group_empty`` a group's
members (fires at 0).
``partitions_under_replicated`` / ``partitions_offline`` a topic's partitions whose
in-sync replicas are fewer than their replicas / that have no leader.

From the cluster's last stored health check (``Cluster.overview``, written by the
collector's health loop; not used when older than ``MQB_HEALTH_STALE_AFTER`` or
failed): ``node_down`` 1 per node not running, and per node an earlier check showed
(in this process, or an alert still open on it) that is missing now;
``broker_alarm`` 1 per node and resource alarm raised (entity
``<node>/memory``, ``<node>/disk``), patterns matched against the node's name.

``celery_worker_gone``: per Celery worker (hostname) the consumer tracking recorded
on the cluster (``Consumer`` rows of kind ``celery``: workers on a monitored RabbitMQ,
found by its sample, or on a Redis broker, asked by the collector's ``celery`` loop,
which calls :func:`evaluate_workers` for its bookkeeping cluster after every answer),
0 while the tracking counts it present, else the seconds since it was last seen. The
rule's ``for_seconds`` is its threshold: it fires once a worker seen before has not
been seen for longer, and resolves when the worker is back.
"""

from __future__ import annotations

import bisect
import fnmatch
import functools
import hashlib
import operator
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from brokers.base.metrics import FIELDS, ClusterSample, Point, queue_entity, split_queue_entity
from dashboard.alerts import live
from dashboard.alerts.rules import CompiledRule, Rulebook, get_rulebook
from dashboard.models import (
    Alert,
    AlertNotification,
    AlertRule,
    Cluster,
    Consumer,
    DeadLetter,
    Job,
    Silence,
)

Kind = AlertRule.Kind
State = Alert.State
Event = AlertNotification.Event
ACTIVE = (State.PENDING, State.FIRING)
# Which points feed which kind: entity types and the field read.
POINT_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    Kind.QUEUE_DEPTH: (("queue", "topic"), "depth"),
    Kind.NO_CONSUMERS: (("queue",), "consumers"),
    Kind.GROUP_LAG: (("group",), "lag"),
    Kind.GROUP_LAG_SECONDS: (("group",), "lag_seconds"),
    Kind.GROUP_EMPTY: (("group",), "consumers"),
}
DLQ_KINDS = (Kind.DLQ_PENDING, Kind.DLQ_OLDEST_AGE)
NEVER = 1e9
PRESENT = "active"
"""A consumer row's state while the tracking counts it present (``consumers_tracking``)"""
"""``group_drain_seconds`` of a group that lags and consumes nothing (about 31 years)"""
_READY, _DELIVER = FIELDS.index("ready"), FIELDS.index("deliver_rate")
_CONSUMERS = FIELDS.index("consumers")
_DEPTH, _LAG = FIELDS.index("depth"), FIELDS.index("lag")
# Per cluster, per entity a growth rule matches: (times, depths) of the last window.
_depths: dict[int, dict[str, tuple[list[float], list[float]]]] = {}
# Per cluster, the node names its stored health checks have shown.
_nodes: dict[int, set[str]] = {}


def forget() -> None:
    """Drop what this process remembers between samples (depths, nodes)."""
    _depths.clear()
    _nodes.clear()


def fingerprint(rule_pk: int, cluster_id: int, entity: str) -> str:
    return hashlib.sha256(f"{rule_pk}\0{cluster_id}\0{entity}".encode()).hexdigest()[:40]


def dlq_entity(vhost: str, dlq: str) -> str:
    """A dead-letter alert's entity: a RabbitMQ DLQ with its vhost, as queues are; a topic as is."""
    return queue_entity(vhost, dlq) if vhost else dlq


def entity_name(entity_type: str, entity: str) -> str:
    """What a pattern is matched against: a queue's name without its vhost."""
    return split_queue_entity(entity)[1] if entity_type == "queue" else entity


@dataclass(frozen=True)
class Outcome:
    """What one evaluation did, for logs and tests."""

    started: int = 0
    fired: int = 0
    resolved: int = 0
    dropped: int = 0
    notifications: int = 0


def observe(
    book: Rulebook,
    cluster_id: int,
    slug: str,
    sample: ClusterSample | None,
    now: datetime,
) -> tuple[dict[tuple[int, str], float | None], set[str]]:
    """The value of every (rule, entity) pair this sample speaks for, and the kinds it covers."""
    observed: dict[tuple[int, str], float | None] = {}
    covered: set[str] = set()

    def put(kind: str, name: str, entity: str, value: float | None) -> None:
        for rule in book.matching(kind, name, cluster_id):
            observed[(rule.pk, entity)] = value

    if Kind.CLUSTER_UNAVAILABLE in book.kinds:
        covered.add(Kind.CLUSTER_UNAVAILABLE)
        put(Kind.CLUSTER_UNAVAILABLE, slug, slug, 0.0 if sample is not None else 1.0)
    if sample is None:
        return observed, covered
    wanted = {kind: POINT_KINDS[kind] for kind in book.kinds if kind in POINT_KINDS}
    if wanted:
        columns = {kind: FIELDS.index(name) for kind, (_, name) in wanted.items()}
        by_type: dict[str, list[str]] = {}
        for kind, (types, _) in wanted.items():
            for entity_type in types:
                by_type.setdefault(entity_type, []).append(kind)
        for point in sample.points:
            kinds = by_type.get(point.entity_type)
            if not kinds:
                continue
            name = entity_name(point.entity_type, point.entity)
            for kind in kinds:
                raw = point.values[columns[kind]]
                put(kind, name, point.entity, None if raw is None else float(raw))
        covered.update(wanted)
    dlq_kinds = [kind for kind in DLQ_KINDS if kind in book.kinds]
    if dlq_kinds:
        rows = (
            DeadLetter.objects.filter(cluster_id=cluster_id, status=DeadLetter.Status.PENDING)
            .values("vhost", "dlq")
            .annotate(count=Count("pk"), oldest=Min("captured_at"))
        )
        for row in rows:
            age = (now - row["oldest"]).total_seconds() if row["oldest"] else None
            dlq = dlq_entity(row["vhost"], row["dlq"])
            if Kind.DLQ_PENDING in book.kinds:
                put(Kind.DLQ_PENDING, row["dlq"], dlq, float(row["count"]))
            if Kind.DLQ_OLDEST_AGE in book.kinds:
                put(Kind.DLQ_OLDEST_AGE, row["dlq"], dlq, age)
        covered.update(dlq_kinds)

    def put_each(kind: str, name: str, entity: str, of: Of, keep: Keep | None = None) -> None:
        """Like ``put``, the value per rule from its window; ``keep`` picks the rules."""
        for rule in book.matching(kind, name, cluster_id):
            if keep is None or keep(rule.window_seconds):
                observed[(rule.pk, entity)] = of(rule.window_seconds)

    covered.update(_from_points(book, cluster_id, sample, now, put, put_each))
    covered.update(_from_letters(book, cluster_id, now, put_each))
    covered.update(_from_jobs(book, cluster_id, now, put_each))
    covered.update(_from_health(book, cluster_id, now, put))
    covered.update(_from_workers(book, cluster_id, now, put))
    return observed, covered


Put = Callable[[str, str, str, float | None], None]
Of = Callable[[float], float | None]
Keep = Callable[[float], bool]
PutEach = Callable[[str, str, str, Of, Keep | None], None]


def _const(value: float | None) -> Of:
    return lambda window: value


def _windows(book: Rulebook, kind: str) -> set[float]:
    return {rule.window_seconds for rule in book.rules if rule.kind == kind}


def _from_points(
    book: Rulebook,
    cluster_id: int,
    sample: ClusterSample,
    now: datetime,
    put: Put,
    put_each: PutEach,
) -> set[str]:
    """Depth growth, nothing delivered, time to drain and partitions: from the points."""
    kinds = book.kinds
    growth = Kind.DEPTH_GROWTH in kinds
    stalled = Kind.NOT_DELIVERING in kinds
    drain = Kind.GROUP_DRAIN_SECONDS in kinds
    under = Kind.PARTITIONS_UNDER_REPLICATED in kinds
    offline = Kind.PARTITIONS_OFFLINE in kinds
    if not (growth or stalled or drain or under or offline):
        return set()
    stamp = now.timestamp()
    longest = max(_windows(book, Kind.DEPTH_GROWTH), default=0.0)
    before = _depths.get(cluster_id, {})
    after: dict[str, tuple[list[float], list[float]]] = {}
    topics_stalled: dict[str, bool] = {}
    if stalled:
        for point in sample.points:
            if point.entity_type == "group":
                stuck = _lags_and_consumes_nothing(point)
                for topic in (point.extra or {}).get("topics") or ():
                    topics_stalled[topic] = topics_stalled.get(topic, False) or stuck
    for point in sample.points:
        entity_type, values = point.entity_type, point.values
        if entity_type == "group":
            if drain:
                put(Kind.GROUP_DRAIN_SECONDS, point.entity, point.entity, _drain_seconds(point))
            continue
        if entity_type not in ("queue", "topic"):
            continue
        name = entity_name(entity_type, point.entity)
        depth = values[_DEPTH]
        if growth and depth is not None and book.matching(Kind.DEPTH_GROWTH, name, cluster_id):
            history = _remember(before.get(point.entity), stamp, float(depth), longest)
            after[point.entity] = history
            of = functools.partial(_growth, history, stamp)
            put_each(Kind.DEPTH_GROWTH, name, point.entity, of, None)
        if stalled:
            if entity_type == "queue":
                ready, rate = values[_READY], values[_DELIVER]
                flag: float | None = None  # unknown
                if ready is not None and ready <= 0:
                    flag = 0.0
                elif ready is not None and rate is not None:
                    flag = 1.0 if rate <= 0 else 0.0
                elif ready is not None and values[_CONSUMERS] == 0:
                    # No rate reported (RabbitMQ drops a closed channel's counts it had
                    # not collected yet) but nobody to deliver to: not delivering.
                    flag = 1.0
                put(Kind.NOT_DELIVERING, name, point.entity, flag)
            else:
                flag = topics_stalled.get(point.entity, False)
                put(Kind.NOT_DELIVERING, name, point.entity, 1.0 if flag else 0.0)
        if entity_type == "topic" and (under or offline):
            extra = point.extra or {}
            known = "rf" in extra
            if under:
                count = float(extra.get("under_replicated", 0)) if known else None
                put(Kind.PARTITIONS_UNDER_REPLICATED, name, point.entity, count)
            if offline:
                count = float(extra.get("offline", 0)) if known else None
                put(Kind.PARTITIONS_OFFLINE, name, point.entity, count)
    if growth:
        _depths[cluster_id] = after
    covered = {Kind.DEPTH_GROWTH, Kind.NOT_DELIVERING, Kind.GROUP_DRAIN_SECONDS}
    covered |= {Kind.PARTITIONS_UNDER_REPLICATED, Kind.PARTITIONS_OFFLINE}
    return {kind for kind in covered if kind in kinds}


def _lags_and_consumes_nothing(point: Point) -> bool:
    lag, rate = point.values[_LAG], point.values[_DELIVER]
    return lag is not None and lag > 0 and rate is not None and rate <= 0


def _drain_seconds(point: Point) -> float | None:
    lag, rate = point.values[_LAG], point.values[_DELIVER]
    if lag is None:
        return None
    if lag <= 0:
        return 0.0
    if rate is None:
        return None
    return NEVER if rate <= 0 else min(NEVER, lag / rate)


def _remember(
    history: tuple[list[float], list[float]] | None, stamp: float, depth: float, longest: float
) -> tuple[list[float], list[float]]:
    """The entity's depths with this one added, keeping one sample at least ``longest`` old."""
    times, depths = history if history is not None else ([], [])
    if times and times[-1] >= stamp:  # the clock went back: start again
        times, depths = [], []
    times.append(stamp)
    depths.append(depth)
    cut = bisect.bisect_right(times, stamp - longest) - 1
    if cut > 0:
        del times[:cut]
        del depths[:cut]
    return times, depths


def _growth(history: tuple[list[float], list[float]], stamp: float, window: float) -> float | None:
    """Depth now minus the depth of the last sample at least ``window`` old."""
    times, depths = history
    at = bisect.bisect_right(times, stamp - window) - 1
    return None if at < 0 else depths[-1] - depths[at]


def _from_letters(book: Rulebook, cluster_id: int, now: datetime, put_each: PutEach) -> set[str]:
    """Arrivals and the came-back ratio per DLQ: one grouped query per distinct window."""
    covered: set[str] = set()
    letters = DeadLetter.objects.filter(cluster_id=cluster_id)
    if Kind.DLQ_ARRIVALS in book.kinds:
        covered.add(Kind.DLQ_ARRIVALS)
        for window in _windows(book, Kind.DLQ_ARRIVALS):
            since = now - timedelta(seconds=window)
            rows = (
                letters.filter(captured_at__gte=since)
                .values("vhost", "dlq")
                .annotate(n=Count("pk"))
            )
            for row in rows:
                count = float(row["n"])
                put_each(
                    Kind.DLQ_ARRIVALS,
                    row["dlq"],
                    dlq_entity(row["vhost"], row["dlq"]),
                    _const(count),
                    functools.partial(operator.eq, window),
                )
    if Kind.DLQ_CAME_BACK_RATIO in book.kinds:
        covered.add(Kind.DLQ_CAME_BACK_RATIO)
        requeued = (DeadLetter.Status.REQUEUED, DeadLetter.Status.FAILED_AGAIN)
        back = Q(status=DeadLetter.Status.FAILED_AGAIN)
        for window in _windows(book, Kind.DLQ_CAME_BACK_RATIO):
            since = now - timedelta(seconds=window)
            rows = (
                letters.filter(status__in=requeued, acted_at__gte=since)
                .values("vhost", "dlq")
                .annotate(n=Count("pk"), back=Count("pk", filter=back))
            )
            for row in rows:
                ratio = row["back"] / row["n"]
                put_each(
                    Kind.DLQ_CAME_BACK_RATIO,
                    row["dlq"],
                    dlq_entity(row["vhost"], row["dlq"]),
                    _const(ratio),
                    functools.partial(operator.eq, window),
                )
    return covered


def _from_jobs(book: Rulebook, cluster_id: int, now: datetime, put_each: PutEach) -> set[str]:
    """1 per job of this cluster that failed within a rule's window."""
    if Kind.JOB_FAILED not in book.kinds:
        return set()
    longest = max(_windows(book, Kind.JOB_FAILED))
    failed = Job.objects.filter(
        cluster_id=cluster_id,
        state=Job.State.FAILED,
        finished_at__gte=now - timedelta(seconds=longest),
    ).values_list("pk", "kind", "finished_at")
    for pk, kind, finished in failed:
        if finished is None:
            continue
        age = (now - finished).total_seconds()
        put_each(
            Kind.JOB_FAILED,
            kind,
            f"{kind} #{pk}",
            _const(1.0),
            functools.partial(operator.le, age),
        )
    return {Kind.JOB_FAILED}


def _from_health(book: Rulebook, cluster_id: int, now: datetime, put: Put) -> set[str]:
    """Nodes down and resource alarms, from the cluster's last stored health check."""
    down, alarm = Kind.NODE_DOWN in book.kinds, Kind.BROKER_ALARM in book.kinds
    if not (down or alarm):
        return set()
    row = Cluster.objects.filter(pk=cluster_id).values("status", "overview", "last_checked_at")
    stored = row.first()
    if (
        stored is None
        or stored["status"] != Cluster.Status.OK
        or stored["last_checked_at"] is None
        or (now - stored["last_checked_at"]).total_seconds() > settings.MQB_HEALTH_STALE_AFTER
        or not isinstance(stored["overview"], dict)
    ):
        return set()  # unknown: alerts keep their state
    nodes = [n for n in stored["overview"].get("nodes") or () if isinstance(n, dict)]
    covered: set[str] = set()
    if down:
        covered.add(Kind.NODE_DOWN)
        known = _nodes.setdefault(cluster_id, set())
        known.update(
            Alert.objects.filter(
                cluster_id=cluster_id, kind=Kind.NODE_DOWN, state__in=ACTIVE
            ).values_list("entity", flat=True)
        )
        seen = set()
        for node in nodes:
            name = str(node.get("name"))
            seen.add(name)
            put(Kind.NODE_DOWN, name, name, 0.0 if node.get("running", True) else 1.0)
        for name in known - seen:
            put(Kind.NODE_DOWN, name, name, 1.0)
        known.update(seen)
    if alarm:
        covered.add(Kind.BROKER_ALARM)
        for node in nodes:
            raised = node.get("alarms")
            if not isinstance(raised, list | tuple):
                continue  # a check from before alarms were read: unknown
            name = str(node.get("name"))
            for resource in ("memory", "disk"):
                flag = 1.0 if resource in raised else 0.0
                put(Kind.BROKER_ALARM, name, f"{name}/{resource}", flag)
    return covered


def _from_workers(book: Rulebook, cluster_id: int, now: datetime, put: Put) -> set[str]:
    """Per Celery worker recorded on this cluster: 0 while the consumer tracking counts
    it present, else the seconds since it was last seen."""
    if Kind.CELERY_WORKER_GONE not in book.kinds:
        return set()
    rows = (
        Consumer.objects.filter(cluster_id=cluster_id, kind=Consumer.Kind.CELERY)
        .values("identity")
        .annotate(last=Max("last_seen"), present=Count("pk", filter=Q(state=PRESENT)))
    )
    for row in rows:
        gone = 0.0 if row["present"] else max(0.0, (now - row["last"]).total_seconds())
        put(Kind.CELERY_WORKER_GONE, row["identity"], row["identity"], gone)
    return {Kind.CELERY_WORKER_GONE}


def evaluate_workers(cluster_id: int, slug: str, now: datetime | None = None) -> Outcome:
    """Evaluate the ``celery_worker_gone`` rules of a cluster after its workers were
    asked (the collector's ``celery`` loop, for brokers no sample covers)."""
    now = now or timezone.now()
    book = get_rulebook()
    if Kind.CELERY_WORKER_GONE not in book.kinds:
        return Outcome()
    observed: dict[tuple[int, str], float | None] = {}

    def put(kind: str, name: str, entity: str, value: float | None) -> None:
        for rule in book.matching(kind, name, cluster_id):
            observed[(rule.pk, entity)] = value

    covered = _from_workers(book, cluster_id, now, put)
    with transaction.atomic():
        evaluation = Evaluation(book, cluster_id, slug, now, only=covered)
        outcome = evaluation.run(observed, covered)
        # Open pages hear of it once per evaluation, after the commit.
        live.publish_on_commit(list(evaluation.changes.values()), silence_matcher)
        return outcome


def group_key(rule_pk: int, cluster_id: int) -> str:
    """The group of a notification: its rule and its cluster."""
    return f"{rule_pk}/{cluster_id}"


def group_due(channel_id: int, key: str, now: datetime) -> datetime:
    """When a new notification of group ``key`` to a channel is due (Alertmanager's timing).

    It joins the group's notifications still waiting for that channel (unclaimed, not
    sent, not given up: they go as one message); else, if the group's last message went
    less than ``MQB_ALERTS_GROUP_INTERVAL`` seconds ago, it waits for that interval to
    end; else it waits ``MQB_ALERTS_GROUP_WAIT`` seconds, so that alerts of the same rule
    that fire soon after go in the same message.
    """
    rows = AlertNotification.objects.filter(channel_id=channel_id, group_key=key)
    waiting: datetime | None = rows.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        sent_at__isnull=True,
        gave_up_at__isnull=True,
    ).aggregate(at=Min("next_attempt_at"))["at"]
    if waiting is not None:
        return waiting
    last: datetime | None = rows.filter(sent_at__isnull=False).aggregate(at=Max("sent_at"))["at"]
    interval = timedelta(seconds=float(settings.MQB_ALERTS_GROUP_INTERVAL))
    if last is not None and now - last < interval:
        return last + interval
    return now + timedelta(seconds=float(settings.MQB_ALERTS_GROUP_WAIT))


def active_silences(now: datetime) -> list[dict[str, str]]:
    return [
        dict(s)
        for s in Silence.objects.filter(starts_at__lte=now, ends_at__gt=now).values_list(
            "matchers", flat=True
        )
        if isinstance(s, dict)
    ]


def silenced(silences: Iterable[dict[str, str]], labels: dict[str, str]) -> bool:
    """Whether one silence's every matcher (a glob on a label) matches these labels."""
    return any(
        all(fnmatch.fnmatchcase(labels.get(key, ""), str(glob)) for key, glob in matchers.items())
        for matchers in silences
    )


def silence_matcher() -> live.Matcher:
    """Whether a silence active now matches an alert's labels (silences read once)."""
    return functools.partial(silenced, active_silences(timezone.now()))


class Evaluation:
    """One cluster's evaluation after one sample: state changes and outbox rows."""

    def __init__(
        self,
        book: Rulebook,
        cluster_id: int,
        slug: str,
        now: datetime,
        only: set[str] | None = None,
    ) -> None:
        self.only = only
        self.group_due: dict[tuple[int, str], datetime] = {}
        self.book = book
        self.cluster_id = cluster_id
        self.slug = slug
        self.now = now
        self.silences = active_silences(now)
        self.counts = {"started": 0, "fired": 0, "resolved": 0, "dropped": 0, "notifications": 0}
        self.changes: dict[int, live.Change] = {}  # per alert, its last change (open pages)

    def _changed(self, alert: Alert, change: live.ChangeName) -> None:
        state = "dropped" if change == "dropped" else alert.state
        self.changes[alert.pk] = live.Change(
            alert.pk, self.slug, alert.kind, alert.entity, state, change
        )

    def run(self, observed: dict[tuple[int, str], float | None], covered: set[str]) -> Outcome:
        alerts = Alert.objects.filter(cluster_id=self.cluster_id, state__in=ACTIVE)
        if self.only is not None:
            alerts = alerts.filter(kind__in=self.only)
        active = {(a.rule_id, a.entity): a for a in alerts}
        for (rule_pk, entity), value in observed.items():
            if value is None:
                continue
            rule = self.book.by_pk[rule_pk]
            alert = active.get((rule_pk, entity))
            if alert is None:
                if rule.holds(value):
                    self._start(rule, entity, value)
            elif rule.holds(value) or (alert.state == State.FIRING and rule.still_holds(value)):
                self._holding(rule, alert, value)
            elif alert.state == State.PENDING:
                self._changed(alert, "dropped")
                alert.delete()
                self.counts["dropped"] += 1
            else:
                self._resolve(rule, alert, value)
        for key, alert in active.items():
            if key in observed:
                continue
            still = self.book.by_pk.get(alert.rule_id) if alert.rule_id is not None else None
            if still is None:
                self._end_quietly(alert)
            elif alert.kind in covered:
                if alert.state == State.PENDING:
                    self._changed(alert, "dropped")
                    alert.delete()
                    self.counts["dropped"] += 1
                else:
                    self._resolve(still, alert, None)
        return Outcome(**self.counts)

    def _start(self, rule: CompiledRule, entity: str, value: float) -> None:
        alert = Alert.objects.create(
            rule_id=rule.pk,
            rule_name=rule.name,
            kind=rule.kind,
            cluster_id=self.cluster_id,
            entity=entity,
            state=State.PENDING,
            fingerprint=fingerprint(rule.pk, self.cluster_id, entity),
            value=value,
            started_at=self.now,
        )
        self.counts["started"] += 1
        self._changed(alert, "started")
        if rule.for_seconds <= 0:
            self._fire(rule, alert)

    def _holding(self, rule: CompiledRule, alert: Alert, value: float) -> None:
        alert.value = value
        if alert.state == State.PENDING:
            if (self.now - alert.started_at).total_seconds() >= rule.for_seconds:
                self._fire(rule, alert)
            else:
                alert.save(update_fields=["value"])
            return
        last = alert.last_notified_at
        if last is None:
            self._notify(rule, alert, Event.FIRING)
        elif rule.repeat_seconds and (self.now - last).total_seconds() >= rule.repeat_seconds:
            self._notify(rule, alert, Event.REPEAT)
        alert.save(update_fields=["value", "last_notified_at"])

    def _fire(self, rule: CompiledRule, alert: Alert) -> None:
        alert.state, alert.fired_at = State.FIRING, self.now
        self._notify(rule, alert, Event.FIRING)
        alert.save(update_fields=["state", "fired_at", "value", "last_notified_at"])
        self.counts["fired"] += 1
        self._changed(alert, "fired")

    def _resolve(self, rule: CompiledRule, alert: Alert, value: float | None) -> None:
        alert.state, alert.resolved_at = State.RESOLVED, self.now
        if value is not None:
            alert.value = value
        if alert.last_notified_at is not None:
            self._notify(rule, alert, Event.RESOLVED, always=True)
        alert.save(update_fields=["state", "resolved_at", "value", "last_notified_at"])
        self.counts["resolved"] += 1
        self._changed(alert, "resolved")

    def _end_quietly(self, alert: Alert) -> None:
        """The rule is gone or disabled: its alerts end without a notification."""
        if alert.state == State.PENDING:
            self._changed(alert, "dropped")
            alert.delete()
            self.counts["dropped"] += 1
            return
        alert.state, alert.resolved_at = State.RESOLVED, self.now
        alert.save(update_fields=["state", "resolved_at"])
        self.counts["resolved"] += 1
        self._changed(alert, "resolved")

    def labels(self, alert: Alert) -> dict[str, str]:
        return {
            "rule": alert.rule_name,
            "kind": alert.kind,
            "cluster": self.slug,
            "entity": alert.entity,
        }

    def _notify(self, rule: CompiledRule, alert: Alert, event: str, always: bool = False) -> None:
        """Outbox rows for every channel of the rule, unless a silence matches. A resolve
        follows a notified firing even under a silence (``always``): receivers close
        what they opened."""
        if not always and silenced(self.silences, self.labels(alert)):
            return
        alert.last_notified_at = self.now
        payload = self.payload(rule, alert, event)
        key = group_key(rule.pk, self.cluster_id)
        rows = []
        for channel_id in rule.channel_ids:
            notification_id = str(uuid.uuid4())
            rows.append(
                AlertNotification(
                    alert=alert,
                    channel_id=channel_id,
                    event=event,
                    notification_id=notification_id,
                    payload={**payload, "id": notification_id},
                    group_key=key,
                    next_attempt_at=self._group_due(channel_id, key),
                )
            )
        AlertNotification.objects.bulk_create(rows)
        self.counts["notifications"] += len(rows)

    def _group_due(self, channel_id: int, key: str) -> datetime:
        """When a new notification of this group to this channel is due (remembered for
        the evaluation, so the alerts of one sample fall due together)."""
        known = self.group_due.get((channel_id, key))
        if known is None:
            known = self.group_due[(channel_id, key)] = group_due(channel_id, key, self.now)
        return known

    def payload(self, rule: CompiledRule, alert: Alert, event: str) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "event": event,
            "status": "resolved" if event == Event.RESOLVED else "firing",
            "alert": {
                "id": alert.pk,
                "fingerprint": alert.fingerprint,
                "rule": rule.name,
                "rule_id": rule.pk,
                "kind": rule.kind,
                "cluster": self.slug,
                "entity": alert.entity,
                "value": alert.value,
                "comparison": rule.comparison,
                "threshold": rule.threshold,
                "started_at": when(alert.started_at),
                "fired_at": when(alert.fired_at),
                "resolved_at": when(alert.resolved_at),
            },
            "at": self.now.isoformat(),
        }


def evaluate(
    cluster_id: int, slug: str, sample: ClusterSample | None, now: datetime | None = None
) -> Outcome:
    """Evaluate every enabled rule for this cluster after a sample (None: it failed)."""
    now = now or timezone.now()
    book = get_rulebook()
    if (
        not book.rules
        and not Alert.objects.filter(cluster_id=cluster_id, state__in=ACTIVE).exists()
    ):
        return Outcome()
    observed, covered = observe(book, cluster_id, slug, sample, now)
    with transaction.atomic():
        evaluation = Evaluation(book, cluster_id, slug, now)
        outcome = evaluation.run(observed, covered)
        # Open pages hear of it once per evaluation, after the commit.
        live.publish_on_commit(list(evaluation.changes.values()), silence_matcher)
        return outcome
