"""JSON API of alerts, read-only for now: the rules, and the alerts they raised.

Every user reads both. A rule's channels are listed by name and kind only: their
URLs and secrets live in the environment or files and are never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from dashboard.core import display
from dashboard.core.api import DateTimeText, Out, errors
from dashboard.models import Alert, AlertRule

router = Router(tags=["alerts"])
MAX_ALERTS = 500


def _iso(moment: datetime | None) -> str | None:
    return display.iso(moment) if moment else None


class AlertChannelRefOut(Out):
    name: str
    kind: str = Field(examples=["webhook", "slack", "teams", "email"])


class AlertRuleOut(Out):
    id: int
    name: str
    enabled: bool
    cluster: str | None = Field(description="the cluster's slug; null: every cluster")
    kind: str = Field(examples=["queue_depth", "group_lag_seconds", "cluster_unavailable"])
    syntax: str = Field(examples=["exact", "glob", "regex"])
    pattern: str = Field(description="empty: every entity")
    comparison: str = Field(examples=["gt", "gte", "lt", "lte"])
    threshold: float
    resolve_threshold: float | None = Field(description="null: the threshold")
    for_seconds: float
    repeat_seconds: float = Field(description="0: notified once per firing")
    channels: list[AlertChannelRefOut]


class AlertRulesOut(Out):
    rules: list[AlertRuleOut]


class AlertOut(Out):
    id: int
    rule_id: int | None = Field(description="null once the rule is deleted")
    rule: str = Field(description="the rule's name when the alert started")
    kind: str
    cluster: str
    entity: str
    state: str = Field(examples=["pending", "firing", "resolved"])
    value: float | None
    fingerprint: str
    started_at: DateTimeText
    fired_at: DateTimeText | None
    resolved_at: DateTimeText | None


class AlertsOut(Out):
    alerts: list[AlertOut] = Field(description=f"newest first, at most {MAX_ALERTS}")


class AlertsQuery(Schema):
    state: Literal["", "active", "pending", "firing", "resolved"] = Field(
        "", description="active: pending or firing; empty: any"
    )


@router.get(
    "/alerts/rules",
    response={200: AlertRulesOut},
    url_name="api-alert-rules",
    summary="Alert rules and the channels they notify",
    operation_id="listAlertRules",
)
def alert_rules(request: HttpRequest) -> Any:
    rows = AlertRule.objects.select_related("cluster").prefetch_related("channels")
    return {
        "rules": [
            {
                "id": r.pk,
                "name": r.name,
                "enabled": r.enabled,
                "cluster": r.cluster.slug if r.cluster else None,
                "kind": r.kind,
                "syntax": r.syntax,
                "pattern": r.pattern,
                "comparison": r.comparison,
                "threshold": r.threshold,
                "resolve_threshold": r.resolve_threshold,
                "for_seconds": r.for_seconds,
                "repeat_seconds": r.repeat_seconds,
                "channels": [{"name": c.name, "kind": c.kind} for c in r.channels.all()],
            }
            for r in rows
        ]
    }


@router.get(
    "/alerts",
    response={200: AlertsOut, **errors(400)},
    url_name="api-alerts",
    summary="Alerts, newest first, by state",
    operation_id="listAlerts",
)
def alerts(request: HttpRequest, query: Query[AlertsQuery]) -> Any:
    rows = Alert.objects.select_related("cluster")
    if query.state == "active":
        rows = rows.filter(state__in=(Alert.State.PENDING, Alert.State.FIRING))
    elif query.state:
        rows = rows.filter(state=query.state)
    return {
        "alerts": [
            {
                "id": a.pk,
                "rule_id": a.rule_id,
                "rule": a.rule_name,
                "kind": a.kind,
                "cluster": a.cluster.slug,
                "entity": a.entity,
                "state": a.state,
                "value": a.value,
                "fingerprint": a.fingerprint,
                "started_at": display.iso(a.started_at),
                "fired_at": _iso(a.fired_at),
                "resolved_at": _iso(a.resolved_at),
            }
            for a in rows[:MAX_ALERTS]
        ]
    }
