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
kind, cluster, entity: globs) writes none.

Values per kind: ``queue_depth`` a queue's or topic's depth; ``no_consumers`` a
queue's consumers (fires at 0); ``group_lag`` / ``group_lag_seconds`` a consumer
group's lag; ``dlq_pending`` / ``dlq_oldest_age`` the captured letters still pending
per DLQ (one grouped query), their count and the age in seconds of the oldest;
``cluster_unavailable`` 1 when the sample failed, else 0.
"""

from __future__ import annotations

import fnmatch
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from brokers.base.metrics import FIELDS, ClusterSample, split_queue_entity
from dashboard.alerts.rules import CompiledRule, Rulebook, get_rulebook
from dashboard.models import Alert, AlertNotification, AlertRule, DeadLetter, Silence

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
}
DLQ_KINDS = (Kind.DLQ_PENDING, Kind.DLQ_OLDEST_AGE)


def fingerprint(rule_pk: int, cluster_id: int, entity: str) -> str:
    return hashlib.sha256(f"{rule_pk}\0{cluster_id}\0{entity}".encode()).hexdigest()[:40]


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
            .values("dlq")
            .annotate(count=Count("pk"), oldest=Min("captured_at"))
        )
        for row in rows:
            age = (now - row["oldest"]).total_seconds() if row["oldest"] else None
            if Kind.DLQ_PENDING in book.kinds:
                put(Kind.DLQ_PENDING, row["dlq"], row["dlq"], float(row["count"]))
            if Kind.DLQ_OLDEST_AGE in book.kinds:
                put(Kind.DLQ_OLDEST_AGE, row["dlq"], row["dlq"], age)
        covered.update(dlq_kinds)
    return observed, covered


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


class Evaluation:
    """One cluster's evaluation after one sample: state changes and outbox rows."""

    def __init__(self, book: Rulebook, cluster_id: int, slug: str, now: datetime) -> None:
        self.book = book
        self.cluster_id = cluster_id
        self.slug = slug
        self.now = now
        self.silences = active_silences(now)
        self.counts = {"started": 0, "fired": 0, "resolved": 0, "dropped": 0, "notifications": 0}

    def run(self, observed: dict[tuple[int, str], float | None], covered: set[str]) -> Outcome:
        active = {
            (a.rule_id, a.entity): a
            for a in Alert.objects.filter(cluster_id=self.cluster_id, state__in=ACTIVE)
        }
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

    def _resolve(self, rule: CompiledRule, alert: Alert, value: float | None) -> None:
        alert.state, alert.resolved_at = State.RESOLVED, self.now
        if value is not None:
            alert.value = value
        if alert.last_notified_at is not None:
            self._notify(rule, alert, Event.RESOLVED, always=True)
        alert.save(update_fields=["state", "resolved_at", "value", "last_notified_at"])
        self.counts["resolved"] += 1

    def _end_quietly(self, alert: Alert) -> None:
        """The rule is gone or disabled: its alerts end without a notification."""
        if alert.state == State.PENDING:
            alert.delete()
            self.counts["dropped"] += 1
            return
        alert.state, alert.resolved_at = State.RESOLVED, self.now
        alert.save(update_fields=["state", "resolved_at"])
        self.counts["resolved"] += 1

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
                    next_attempt_at=self.now,
                )
            )
        AlertNotification.objects.bulk_create(rows)
        self.counts["notifications"] += len(rows)

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
        return Evaluation(book, cluster_id, slug, now).run(observed, covered)
