"""The alerts pages: alerts (firing and pending first, then resolved), rules and silences.

Everyone reads; operators create, edit, enable, disable and delete rules, create and
expire silences and acknowledge alerts (``alerts.manage`` checks the role and writes
the audit). An alert's "Silence" button opens the silence form with matchers that
match exactly that alert (its rule, cluster and entity).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard.alerts import manage
from dashboard.alerts.manage import InvalidField
from dashboard.core import once
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR, has_role
from dashboard.models import Alert, AlertRule

STATES = ("", "active", "firing", "pending", "resolved")
DURATIONS = ((900, "15 minutes"), (3600, "1 hour"), (14400, "4 hours"), (86400, "1 day"),
             (604800, "1 week"))  # fmt: skip


async def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    # Context processors touch the database: render off the event loop.
    user = await request.auser()
    context["is_operator"] = await sync_to_async(has_role)(user, OPERATOR)
    response: HttpResponse = await sync_to_async(render)(request, template, context, status=status)
    return response


async def _operator(request: HttpRequest) -> None:
    if not await sync_to_async(has_role)(await request.auser(), OPERATOR):
        raise PermissionDenied("changing alerts needs the operator role")


@require_GET
async def alerts(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    state = state if state in STATES else ""
    cluster = request.GET.get("cluster", "")[:200]
    context = {
        "rows": await sync_to_async(manage.get_alerts)(state, cluster),
        "state": state,
        "cluster": cluster,
        "states": [s for s in STATES if s],
        "clusters": await sync_to_async(manage.cluster_choices)(),
    }
    return await _render(request, "alerts/alerts.html", context)


@require_POST
@once.writes_once("alerts.acknowledge")
async def acknowledge(request: HttpRequest, alert_id: int) -> HttpResponseRedirect:
    try:
        alert = await sync_to_async(manage.do_acknowledge_alert)(
            user=await request.auser(), alert_id=alert_id, request=request
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Alert {alert.rule_name!r} on {alert.entity!r} acknowledged.")
    return redirect("alerts")


@require_GET
async def rules(request: HttpRequest) -> HttpResponse:
    context = {"rules": await sync_to_async(manage.get_rules)()}
    return await _render(request, "alerts/rules.html", context)


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as typed: a whole number reads 60, not 60.0; no value is empty."""
    shown = {}
    for k, v in values.items():
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        shown[k] = "" if v is None else v
    return shown


async def _form_page(
    request: HttpRequest,
    rule: AlertRule | None,
    values: dict[str, Any],
    error: InvalidField | None = None,
) -> HttpResponse:
    context = {
        "rule": rule,
        "values": _shown(values),
        "error": error,
        "clusters": await sync_to_async(manage.cluster_choices)(),
        "channels": await sync_to_async(manage.channel_choices)(),
        "kinds": AlertRule.Kind.choices,
        "syntaxes": AlertRule.Syntax.choices,
        "comparisons": AlertRule.Comparison.choices,
    }
    return await _render(request, "alerts/rule_edit.html", context, 400 if error else 200)


def _new_values(request: HttpRequest) -> dict[str, Any]:
    """A new rule's form, prefilled from the query (a queue page's "Alert on this" link)."""
    values = manage.snapshot(AlertRule(name="", kind=AlertRule.Kind.QUEUE_DEPTH))
    for name in ("name", "kind", "cluster", "syntax", "pattern"):
        if name in request.GET:
            values[name] = request.GET[name][:512]
    return values


async def rule_edit(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    """GET: the form; POST: save it."""
    rule = None if rule_id is None else await sync_to_async(manage.get_rule)(rule_id)
    if request.method == "POST":
        return await _save(request, rule)
    await _operator(request)
    values = _new_values(request) if rule is None else await sync_to_async(manage.snapshot)(rule)
    return await _form_page(request, rule, values)


@once.writes_once("alerts.rule")
async def _save(request: HttpRequest, rule: AlertRule | None) -> HttpResponse:
    await _operator(request)
    user = await request.auser()
    values: dict[str, Any] = {k: request.POST.get(k, "") for k in manage.snapshot(AlertRule())}
    values["enabled"] = request.POST.get("enabled") == "on"
    values["channels"] = request.POST.getlist("channels")
    try:
        data = await sync_to_async(manage.RuleInput.from_form)(request.POST)
        if rule is None:
            saved = await sync_to_async(manage.do_create_rule)(
                user=user, data=data, request=request
            )
        else:
            saved = await sync_to_async(manage.do_update_rule)(
                user=user, rule_id=rule.pk, data=data, request=request
            )
    except InvalidField as exc:
        return await _form_page(request, rule, values, exc)
    messages.success(request, f"Rule {saved.name!r} {'saved' if rule else 'created'}.")
    return redirect("alerts-rules")


@require_POST
@once.writes_once("alerts.rule_enable")
async def rule_enable(request: HttpRequest, rule_id: int) -> HttpResponseRedirect:
    enabled = request.POST.get("enabled") == "1"
    rule = await sync_to_async(manage.do_set_rule_enabled)(
        user=await request.auser(), rule_id=rule_id, enabled=enabled, request=request
    )
    messages.success(request, f"Rule {rule.name!r} {'enabled' if enabled else 'disabled'}.")
    return redirect("alerts-rules")


@require_POST
@once.writes_once("alerts.rule_delete")
async def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponseRedirect:
    name = await sync_to_async(manage.do_delete_rule)(
        user=await request.auser(), rule_id=rule_id, request=request
    )
    messages.success(request, f"Rule {name!r} deleted; its alerts stay in the history.")
    return redirect("alerts-rules")


@require_GET
async def silences(request: HttpRequest) -> HttpResponse:
    found = await sync_to_async(manage.get_silences)()
    context = {"rows": [(s, manage.silence_state(s)) for s in found]}
    return await _render(request, "alerts/silences.html", context)


async def _silence_page(
    request: HttpRequest, values: dict[str, Any], error: InvalidField | None = None
) -> HttpResponse:
    context = {"values": values, "error": error, "durations": DURATIONS}
    return await _render(request, "alerts/silence_new.html", context, 400 if error else 200)


async def _alert_matchers(request: HttpRequest) -> dict[str, str]:
    """Matchers for exactly the alert named in the query (``?alert=<id>``), else empty."""
    raw = request.GET.get("alert", "")
    if not raw.isdigit():
        return {}
    alert: Alert | None = (
        await Alert.objects.select_related("cluster")
        .filter(pk=min(int(raw), manage.MAX_ID))
        .afirst()
    )
    if alert is None:
        return {}
    labels = manage.labels_of(alert)
    return {k: manage.escape_glob(labels[k]) for k in ("rule", "cluster", "entity")}


async def silence_new(request: HttpRequest) -> HttpResponse:
    """GET: the form (matching one alert when asked); POST: create it."""
    if request.method == "POST":
        return await _create_silence(request)
    await _operator(request)
    values: dict[str, Any] = {label: "" for label in manage.LABELS}
    values |= await _alert_matchers(request)
    values |= {"duration_seconds": 3600, "reason": ""}
    return await _silence_page(request, values)


@once.writes_once("alerts.silence")
async def _create_silence(request: HttpRequest) -> HttpResponse:
    await _operator(request)
    values = {k: request.POST.get(k, "") for k in (*manage.LABELS, "duration_seconds", "reason")}
    try:
        data = manage.SilenceInput.from_form(request.POST)
        silence = await sync_to_async(manage.do_create_silence)(
            user=await request.auser(), data=data, request=request
        )
    except InvalidField as exc:
        return await _silence_page(request, values, exc)
    messages.success(request, f"Silence #{silence.pk} created.")
    return redirect("alerts")


@require_POST
@once.writes_once("alerts.silence_expire")
async def silence_expire(request: HttpRequest, silence_id: int) -> HttpResponseRedirect:
    try:
        await sync_to_async(manage.do_expire_silence)(
            user=await request.auser(), silence_id=silence_id, request=request
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Silence #{silence_id} expired.")
    return redirect("alerts-silences")
