"""JSON API of alerts: the rules, the alerts they raised, and silences.

Every user reads. Operators create, replace, enable, disable and delete rules,
create and expire silences and acknowledge alerts: the same service as the pages
(``alerts.manage``), audited; a bad value answers 400 with ``field`` naming it. A
rule's channels are listed by name and kind only: their URLs and secrets live in
the environment or files and are never returned. ``/alerts/shown`` lists alerts as
the Alerts page does (its live rows are read from it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema
from pydantic import WithJsonSchema

from dashboard.alerts import export, manage
from dashboard.core import display
from dashboard.core.api import DateTimeText, Out, errors
from dashboard.models import Alert, AlertRule, Silence

router = Router(tags=["alerts"])
MAX_ALERTS = 500


# A path id that is not an integer is a 400 naming it; one out of range a 404.
_ID = WithJsonSchema({"type": "integer", "minimum": 1, "maximum": manage.MAX_ID})
RuleId = Path[Annotated[int, _ID]]
SilenceId = Path[Annotated[int, _ID]]
AlertId = Path[Annotated[int, _ID]]


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
    acknowledged_at: DateTimeText | None
    acknowledged_by: str = Field(description="who acknowledged it; empty: nobody")


class AlertsOut(Out):
    alerts: list[AlertOut] = Field(description=f"newest first, at most {MAX_ALERTS}")


class AlertShownOut(AlertOut):
    silenced: bool = Field(description="an active silence matches it now (never for resolved)")


class AlertsShownOut(Out):
    alerts: list[AlertShownOut] = Field(
        description="firing, then pending (newest first), then the last "
        f"{manage.MAX_RESOLVED} resolved"
    )


class AlertsShownQuery(Schema):
    state: Literal["", "active", "pending", "firing", "resolved"] = Field(
        "", description="active: pending or firing; empty: any"
    )
    cluster: str = Field("", max_length=200, description="a cluster's slug; empty: every cluster")


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
    return {"rules": [rule_json(r) for r in rows]}


def rule_json(r: AlertRule) -> dict[str, Any]:
    return {
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
    return {"alerts": [alert_json(a) for a in rows[:MAX_ALERTS]]}


@router.get(
    "/alerts/shown",
    response={200: AlertsShownOut, **errors(400)},
    url_name="api-alerts-shown",
    summary="Alerts as the Alerts page lists them, with whether a silence holds each",
    operation_id="listAlertsShown",
)
def alerts_shown(request: HttpRequest, query: Query[AlertsShownQuery]) -> Any:
    rows = manage.get_alerts(query.state, query.cluster)
    return {"alerts": [{**alert_json(r.alert), "silenced": r.silenced} for r in rows]}


def alert_json(a: Alert) -> dict[str, Any]:
    return {
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
        "acknowledged_at": _iso(a.acknowledged_at),
        "acknowledged_by": a.acknowledged_by,
    }


# -- writes (operators, audited) --------------------------------------------------------


class AlertRuleIn(Schema):
    """A rule. ``kind`` says what value it watches; the pattern picks the entities."""

    name: str = Field(max_length=manage.MAX_NAME)
    kind: str = Field(examples=["queue_depth", "no_consumers", "group_lag_seconds"])
    cluster: str = Field("", description="a cluster's slug; empty: every cluster")
    syntax: str = Field("glob", description="exact, glob (whole name) or regex (RE2, anywhere)")
    pattern: str = Field("", max_length=manage.MAX_PATTERN, description="empty: every entity")
    comparison: str = Field("gt", description="gt, gte, lt or lte")
    threshold: float = 0.0
    resolve_threshold: float | None = Field(
        None, description="hysteresis: a firing alert resolves past it; null: the threshold"
    )
    for_seconds: float = Field(0.0, description="how long the condition holds before firing")
    repeat_seconds: float = Field(0.0, description="repeat while firing; 0: once per firing")
    enabled: bool = True
    channels: list[str] = Field([], max_length=50, description="channel names")

    def data(self) -> manage.RuleInput:
        return manage.RuleInput(**{**self.model_dump(), "channels": tuple(self.channels)})


class AlertRuleEnabledIn(Schema):
    enabled: bool


class AlertRuleDeletedOut(Out):
    deleted: bool


class AlertSilenceIn(Schema):
    """Notifications of alerts every matcher matches are held back for ``duration_seconds``."""

    matchers: dict[str, str] = Field(
        description="label (rule, kind, cluster, entity) -> glob", examples=[{"entity": "*/orders"}]
    )
    duration_seconds: float = Field(
        description=f"{int(manage.MIN_SILENCE)} to {int(manage.MAX_SILENCE)} seconds"
    )
    reason: str = Field(max_length=manage.MAX_REASON)


class AlertSilenceOut(Out):
    id: int
    matchers: dict[str, str]
    starts_at: DateTimeText
    ends_at: DateTimeText
    reason: str
    created_by: str = Field(description="empty: unknown")
    state: str = Field(examples=["active", "scheduled", "ended"])


class AlertSilencesOut(Out):
    silences: list[AlertSilenceOut] = Field(
        description="active ones first (ending soonest first), then the last ended"
    )


def silence_json(s: Silence) -> dict[str, Any]:
    return {
        "id": s.pk,
        "matchers": {str(k): str(v) for k, v in dict(s.matchers).items()},
        "starts_at": display.iso(s.starts_at),
        "ends_at": display.iso(s.ends_at),
        "reason": s.reason,
        "created_by": s.created_by.get_username() if s.created_by else "",
        "state": manage.silence_state(s),
    }


def _rule_out(rule_id: int) -> dict[str, Any]:
    rule = AlertRule.objects.select_related("cluster").prefetch_related("channels")
    return rule_json(rule.get(pk=rule_id))


@router.post(
    "/alerts/rules",
    response={200: AlertRuleOut, **errors(400)},
    url_name="api-alert-rule-create",
    summary="Create an alert rule (operator, audited)",
    operation_id="createAlertRule",
)
async def alert_rule_create(request: HttpRequest, payload: AlertRuleIn) -> Any:
    rule = await sync_to_async(manage.do_create_rule)(
        user=await request.auser(), data=payload.data(), request=request
    )
    return await sync_to_async(_rule_out)(rule.pk)


@router.put(
    "/alerts/rules/{rule_id}",
    response={200: AlertRuleOut, **errors(400, 404)},
    url_name="api-alert-rule",
    summary="Replace an alert rule's values (operator, audited with before and after)",
    operation_id="updateAlertRule",
)
async def alert_rule_update(request: HttpRequest, rule_id: RuleId, payload: AlertRuleIn) -> Any:
    await sync_to_async(manage.do_update_rule)(
        user=await request.auser(), rule_id=rule_id, data=payload.data(), request=request
    )
    return await sync_to_async(_rule_out)(rule_id)


@router.post(
    "/alerts/rules/{rule_id}/enabled",
    response={200: AlertRuleOut, **errors(400, 404)},
    url_name="api-alert-rule-enabled",
    summary="Enable or disable an alert rule (operator, audited)",
    operation_id="setAlertRuleEnabled",
)
async def alert_rule_enabled(
    request: HttpRequest, rule_id: RuleId, payload: AlertRuleEnabledIn
) -> Any:
    await sync_to_async(manage.do_set_rule_enabled)(
        user=await request.auser(), rule_id=rule_id, enabled=payload.enabled, request=request
    )
    return await sync_to_async(_rule_out)(rule_id)


@router.delete(
    "/alerts/rules/{rule_id}",
    response={200: AlertRuleDeletedOut, **errors(400, 404)},
    url_name="api-alert-rule-delete",
    summary="Delete an alert rule; its alerts stay in the history (operator, audited)",
    operation_id="deleteAlertRule",
)
async def alert_rule_delete(request: HttpRequest, rule_id: RuleId) -> Any:
    await sync_to_async(manage.do_delete_rule)(
        user=await request.auser(), rule_id=rule_id, request=request
    )
    return {"deleted": True}


@router.get(
    "/alerts/silences",
    response={200: AlertSilencesOut},
    url_name="api-alert-silences",
    summary="Silences: active and scheduled, then the last ended",
    operation_id="listAlertSilences",
)
def alert_silences(request: HttpRequest) -> Any:
    return {"silences": [silence_json(s) for s in manage.get_silences()]}


@router.post(
    "/alerts/silences",
    response={200: AlertSilenceOut, **errors(400)},
    url_name="api-alert-silence-create",
    summary="Silence alerts matching every matcher, from now for a while (operator, audited)",
    operation_id="createAlertSilence",
)
async def alert_silence_create(request: HttpRequest, payload: AlertSilenceIn) -> Any:
    data = manage.SilenceInput(
        matchers=dict(payload.matchers),
        duration_seconds=payload.duration_seconds,
        reason=payload.reason,
    )
    silence = await sync_to_async(manage.do_create_silence)(
        user=await request.auser(), data=data, request=request
    )
    return await sync_to_async(lambda: silence_json(manage.get_silence(silence.pk)))()


@router.post(
    "/alerts/silences/{silence_id}/expire",
    response={200: AlertSilenceOut, **errors(400, 404)},
    url_name="api-alert-silence-expire",
    summary="End a silence now (operator, audited)",
    operation_id="expireAlertSilence",
)
async def alert_silence_expire(request: HttpRequest, silence_id: SilenceId) -> Any:
    silence = await sync_to_async(manage.do_expire_silence)(
        user=await request.auser(), silence_id=silence_id, request=request
    )
    return await sync_to_async(lambda: silence_json(manage.get_silence(silence.pk)))()


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response={200: AlertOut, **errors(400, 404)},
    url_name="api-alert-acknowledge",
    summary="Acknowledge a pending or firing alert (operator, audited)",
    operation_id="acknowledgeAlert",
)
async def alert_acknowledge(request: HttpRequest, alert_id: AlertId) -> Any:
    alert = await sync_to_async(manage.do_acknowledge_alert)(
        user=await request.auser(), alert_id=alert_id, request=request
    )
    return await sync_to_async(lambda: alert_json(manage.get_alert(alert.pk)))()


class AlertRuleNotExportedOut(Out):
    id: int
    name: str
    kind: str
    reason: str


class AlertRulesExportOut(Out):
    yaml: str = Field(description="Prometheus alerting rules over the metrics of /metrics")
    exported: int = Field(description="enabled rules in the file")
    not_exported: list[AlertRuleNotExportedOut] = Field(
        description="enabled rules of kinds /metrics has no metric for"
    )


@router.get(
    "/alerts/prometheus-rules",
    response={200: AlertRulesExportOut},
    url_name="api-alert-rules-prometheus",
    summary="The enabled rules as a Prometheus alerting-rules file (YAML)",
    operation_id="exportAlertRulesPrometheus",
)
def alert_rules_prometheus(request: HttpRequest) -> Any:
    made = export.get_export()
    return {
        "yaml": made.text,
        "exported": made.exported,
        "not_exported": [
            {"id": r.pk, "name": r.name, "kind": r.kind, "reason": why} for r, why in made.skipped
        ],
    }
