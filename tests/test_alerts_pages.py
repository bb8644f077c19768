"""The alerts write side: the service (roles, audit, bounded input naming its field), the
alerts, rules and silences pages with the Django client, and the API's write routes."""

from __future__ import annotations

import html

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from dashboard.alerts import manage
from dashboard.alerts.engine import evaluate
from dashboard.alerts.manage import InvalidField
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import Alert, AlertChannel, AlertRule, AuditEntry, Silence
from tests.support.alerts import queue_sample

pytestmark = [pytest.mark.django_db]

FORM = {
    "name": "orders deep", "kind": "queue_depth", "cluster": "test-rabbitmq", "syntax": "glob",
    "pattern": "orders*", "comparison": "gt", "threshold": "100", "resolve_threshold": "80",
    "for_seconds": "30", "repeat_seconds": "0", "enabled": "on",
}  # fmt: skip


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def rule_input(**changes) -> manage.RuleInput:
    values = {"name": "deep", "kind": "queue_depth", "pattern": "orders", "threshold": 10.0}
    return manage.RuleInput(**{**values, **changes})


def fire(*names: str, pending: tuple[str, ...] = ()) -> list[Alert]:
    """Exact depth rules on test-rabbitmq (``pending`` ones wait a minute) and one sample
    of every named queue that makes them hold."""
    cluster = sync_cluster_rows()["test-rabbitmq"]
    for name in (*names, *pending):
        AlertRule.objects.get_or_create(
            name=f"deep {name}",
            defaults={
                "kind": AlertRule.Kind.QUEUE_DEPTH,
                "syntax": AlertRule.Syntax.EXACT,
                "pattern": name,
                "threshold": 10,
                "for_seconds": 60 if name in pending else 0,
            },
        )
    sample = queue_sample(cluster.slug, {name: 50 for name in (*names, *pending)})
    evaluate(cluster.pk, cluster.slug, sample, timezone.now())
    return [Alert.objects.get(entity=f"%2F/{name}") for name in (*names, *pending)]


# -- the service ------------------------------------------------------------------------


def test_it_creates_updates_toggles_and_deletes_a_rule_with_an_audit_entry_each(
    use_clusters, operator
):
    AlertChannel.objects.create(name="ops", url_env="MQB_OPS_URL")
    data = rule_input(cluster="test-rabbitmq", channels=("ops",))
    rule = manage.do_create_rule(user=operator, data=data)
    assert (
        rule.cluster is not None
        and rule.cluster.slug == "test-rabbitmq"
        and [c.name for c in rule.channels.all()] == ["ops"]
    )
    manage.do_update_rule(user=operator, rule_id=rule.pk, data=rule_input(threshold=20.0))
    updated = AlertRule.objects.get(pk=rule.pk)
    assert updated.threshold == 20 and updated.cluster_id is None
    assert not updated.channels.exists()
    manage.do_set_rule_enabled(user=operator, rule_id=rule.pk, enabled=False)
    assert AlertRule.objects.get(pk=rule.pk).enabled is False
    assert manage.do_delete_rule(user=operator, rule_id=rule.pk) == "deep"
    assert not AlertRule.objects.exists()
    entries = list(AuditEntry.objects.order_by("pk").values_list("action", "username", "outcome"))
    assert entries == [
        (f"alerts.rule_{change}", "otto", "ok")
        for change in ("create", "update", "enable", "delete")
    ]
    update = AuditEntry.objects.get(action="alerts.rule_update").parameters
    assert update["before"]["threshold"] == 10 and update["after"]["threshold"] == 20
    assert update["before"]["channels"] == ["ops"] and update["after"]["channels"] == []


def test_it_refuses_viewers_every_change_and_audits_the_refusal(use_clusters, viewer):
    [alert] = fire("orders")
    calls = [
        lambda: manage.do_create_rule(user=viewer, data=rule_input()),
        lambda: manage.do_delete_rule(user=viewer, rule_id=alert.rule_id or 0),
        lambda: manage.do_create_silence(
            user=viewer, data=manage.SilenceInput({"entity": "*"}, 600, "deploy")
        ),
        lambda: manage.do_acknowledge_alert(user=viewer, alert_id=alert.pk),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    refused = AuditEntry.objects.filter(outcome="refused").values_list("action", flat=True)
    assert sorted(refused) == [
        "alerts.alert_acknowledge",
        "alerts.rule_create",
        "alerts.rule_delete",
        "alerts.silence_create",
    ]
    assert AlertRule.objects.count() == 1 and not Silence.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"kind": "lag_in_furlongs"}, "kind"),
        ({"syntax": "sql"}, "syntax"),
        ({"syntax": "regex", "pattern": "(a"}, "pattern"),
        ({"syntax": "regex", "pattern": "(?=lookahead)"}, "pattern"),
        ({"pattern": "x" * 513}, "pattern"),
        ({"comparison": "eq"}, "comparison"),
        ({"threshold": float("inf")}, "threshold"),
        ({"resolve_threshold": 20.0}, "resolve_threshold"),
        ({"comparison": "lt", "resolve_threshold": 5.0}, "resolve_threshold"),
        ({"for_seconds": -1.0}, "for_seconds"),
        ({"for_seconds": 8 * 24 * 3600.0}, "for_seconds"),
        ({"repeat_seconds": 31 * 24 * 3600.0}, "repeat_seconds"),
        ({"cluster": "nowhere"}, "cluster"),
        ({"channels": ("nobody",)}, "channels"),
    ],
)
def test_it_refuses_bad_rule_input_naming_the_field(use_clusters, operator, changes, field):
    with pytest.raises(InvalidField) as refused:
        manage.do_create_rule(user=operator, data=rule_input(**changes))
    assert refused.value.field == field
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("matchers", "duration", "reason", "field"),
    [
        ({"entity": ""}, 600, "deploy", "matchers"),
        ({"severity": "high"}, 600, "deploy", "matchers"),
        ({"entity": "x" * 513}, 600, "deploy", "entity"),
        ({"entity": "*"}, 10, "deploy", "duration_seconds"),
        ({"entity": "*"}, 91 * 24 * 3600, "deploy", "duration_seconds"),
        ({"entity": "*"}, float("nan"), "deploy", "duration_seconds"),
        ({"entity": "*"}, 600, "  ", "reason"),
        ({"entity": "*"}, 600, "r" * 1001, "reason"),
    ],
)
def test_it_refuses_bad_silences_naming_the_field(operator, matchers, duration, reason, field):
    with pytest.raises(InvalidField) as refused:
        data = manage.SilenceInput(matchers, duration, reason)
        manage.do_create_silence(user=operator, data=data)
    assert refused.value.field == field
    assert not Silence.objects.exists()


def test_a_silence_made_from_an_alert_silences_it_and_expiring_it_ends_that(use_clusters, operator):
    odd = "orders[eu]*"  # glob characters in a name are matched literally
    alert, other = fire(odd, "orders-eu-1")
    labels = manage.labels_of(alert)
    matchers = {k: manage.escape_glob(labels[k]) for k in ("rule", "cluster", "entity")}
    data = manage.SilenceInput(matchers, 3600, "deploy in progress")
    silence = manage.do_create_silence(user=operator, data=data)
    shown = {row.alert.pk: row.silenced for row in manage.get_alerts()}
    assert shown == {alert.pk: True, other.pk: False}
    manage.do_expire_silence(user=operator, silence_id=silence.pk)
    assert manage.silence_state(Silence.objects.get()) == "ended"
    assert not any(row.silenced for row in manage.get_alerts())
    with pytest.raises(InvalidField):
        manage.do_expire_silence(user=operator, silence_id=silence.pk)
    actions = AuditEntry.objects.order_by("pk").values_list("action", flat=True)
    assert list(actions) == ["alerts.silence_create", "alerts.silence_expire"]


def test_it_acknowledges_a_firing_alert_once_and_never_a_resolved_one(use_clusters, operator):
    [alert] = fire("orders")
    manage.do_acknowledge_alert(user=operator, alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.acknowledged_by == "otto" and alert.acknowledged_at is not None
    with pytest.raises(InvalidField, match="acknowledged by otto"):
        manage.do_acknowledge_alert(user=operator, alert_id=alert.pk)
    Alert.objects.filter(pk=alert.pk).update(state=Alert.State.RESOLVED)
    with pytest.raises(InvalidField, match="is resolved"):
        manage.do_acknowledge_alert(user=operator, alert_id=alert.pk)
    [entry] = AuditEntry.objects.filter(action="alerts.alert_acknowledge")
    assert (
        entry.cluster is not None
        and entry.cluster.slug == "test-rabbitmq"
        and entry.parameters["state"] == "firing"
    )


def test_the_alerts_list_puts_firing_then_pending_then_resolved(use_clusters):
    firing, resolved, _pending = fire("a-firing", "b-resolved", pending=("c-pending",))
    Alert.objects.filter(pk=resolved.pk).update(
        state=Alert.State.RESOLVED, resolved_at=timezone.now()
    )
    states = [row.alert.state for row in manage.get_alerts()]
    assert states == ["firing", "pending", "resolved"]
    assert [row.alert.pk for row in manage.get_alerts("resolved")] == [resolved.pk]
    assert [row.alert.pk for row in manage.get_alerts("firing")] == [firing.pk]
    assert manage.get_alerts(cluster="elsewhere") == []


# -- pages --------------------------------------------------------------------------------


def test_viewers_read_every_page_but_change_nothing(use_clusters, viewer):
    [alert] = fire("orders")
    client = client_for(viewer)
    for path in ("/alerts/", "/alerts/rules/", "/alerts/silences/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert 'data-action="' not in text(response), "no buttons for viewers"
    assert "deep orders" in text(client.get("/alerts/rules/"))
    for path in ("/alerts/rules/new", "/alerts/silences/new"):
        assert client.get(path).status_code == 403
    assert client.post("/alerts/rules/new", FORM).status_code == 403
    assert client.post(f"/alerts/{alert.pk}/acknowledge").status_code == 403
    assert client.post(f"/alerts/rules/{alert.rule_id}/delete").status_code == 403
    assert AlertRule.objects.count() == 1


def test_an_operator_creates_and_edits_a_rule_by_form(use_clusters, operator):
    client = client_for(operator)
    assert client.get("/alerts/rules/new?pattern=orders&kind=no_consumers").status_code == 200
    response = client.post("/alerts/rules/new", FORM)
    assert response.status_code == 302 and response["Location"] == "/alerts/rules/"
    rule = AlertRule.objects.get()
    assert (rule.pattern, rule.threshold, rule.resolve_threshold, rule.for_seconds) == (
        "orders*",
        100,
        80,
        30,
    )
    form = text(client.get(f"/alerts/rules/{rule.pk}/"))
    assert 'value="orders*"' in form and 'value="100"' in form and 'value="80"' in form
    bad = client.post(f"/alerts/rules/{rule.pk}/", {**FORM, "for_seconds": "soon"})
    assert bad.status_code == 400
    page = text(bad)
    assert "for_seconds: 'soon' is not a number" in page
    assert (
        'name="for_seconds" type="number" min="0" step="any" value="soon" required aria-invalid'
        in page
    )
    assert client.post(f"/alerts/rules/{rule.pk}/", {**FORM, "name": "renamed"}).status_code == 302
    assert AlertRule.objects.get().name == "renamed"


def test_an_operator_toggles_and_deletes_a_rule_from_the_list(use_clusters, operator):
    rule = manage.do_create_rule(user=operator, data=rule_input())
    client = client_for(operator)
    page = text(client.get("/alerts/rules/"))
    assert 'data-action="disable"' in page and 'data-confirm="Delete the rule deep?' in page
    client.post(f"/alerts/rules/{rule.pk}/enable", {"enabled": "0"})
    assert AlertRule.objects.get().enabled is False
    assert 'data-action="enable"' in text(client.get("/alerts/rules/"))
    client.post(f"/alerts/rules/{rule.pk}/delete")
    assert not AlertRule.objects.exists()
    assert client.post("/alerts/rules/999999/delete").status_code == 404


def test_the_alerts_page_filters_and_an_alert_silences_by_its_button(use_clusters, operator):
    [alert] = fire("orders")
    client = client_for(operator)
    page = text(client.get("/alerts/"))
    assert f'id="alert-{alert.pk}" data-alert="{alert.pk}" data-state="firing"' in page
    assert f'href="/alerts/silences/new?alert={alert.pk}"' in page
    assert "No alerts match" in text(client.get("/alerts/?state=resolved"))
    assert "No alerts match" in text(client.get("/alerts/?cluster=test-kafka"))
    form = text(client.get(f"/alerts/silences/new?alert={alert.pk}"))
    assert 'name="entity" class="mono" value="%2F/orders"' in form
    assert 'name="cluster" class="mono" value="test-rabbitmq"' in form
    values = {"rule": "deep orders", "cluster": "test-rabbitmq", "entity": "%2F/orders"}
    refused = client.post("/alerts/silences/new", {**values, "duration_seconds": "3600"})
    assert refused.status_code == 400 and "reason: is required" in text(refused)
    made = client.post(
        "/alerts/silences/new", {**values, "duration_seconds": "3600", "reason": "deploy"}
    )
    assert made.status_code == 302
    assert 'data-state="firing" data-silenced="1"' in text(client.get("/alerts/"))
    silence = Silence.objects.get()
    assert silence.matchers == values and silence.reason == "deploy"
    listed = text(client.get("/alerts/silences/"))
    assert f'data-silence="{silence.pk}" data-state="active"' in listed
    client.post(f"/alerts/silences/{silence.pk}/expire")
    assert 'data-state="ended"' in text(client.get("/alerts/silences/"))
    client.post(f"/alerts/{alert.pk}/acknowledge")
    assert "by otto" in text(client.get("/alerts/"))


def test_the_navigation_links_the_alerts_page(viewer):
    page = text(client_for(viewer).get("/alerts/"))
    assert '<a href="/alerts/" aria-current="page">Alerts</a>' in page


# -- the API ------------------------------------------------------------------------------

RULE = {"name": "api deep", "kind": "queue_depth", "pattern": "orders", "threshold": 10}


def test_the_api_writes_rules_for_operators_only(use_clusters, viewer, operator):
    refused = client_for(viewer).post("/api/alerts/rules", RULE, content_type="application/json")
    assert refused.status_code == 403
    client = client_for(operator)
    made = client.post("/api/alerts/rules", RULE, content_type="application/json")
    assert made.status_code == 200, made.content
    rule = made.json()
    assert rule["name"] == "api deep" and rule["threshold"] == 10 and rule["enabled"] is True
    path = f"/api/alerts/rules/{rule['id']}"
    changed = client.put(path, {**RULE, "threshold": 20}, content_type="application/json")
    assert changed.json()["threshold"] == 20
    off = client.post(f"{path}/enabled", {"enabled": False}, content_type="application/json")
    assert off.json()["enabled"] is False
    bad = client.put(
        path, {**RULE, "syntax": "regex", "pattern": "(a"}, content_type="application/json"
    )
    assert bad.status_code == 400 and "pattern" in bad.json()["error"]
    assert client.delete(path).json() == {"deleted": True}
    assert client.delete(path).status_code == 404
    assert client.delete("/api/alerts/rules/x").status_code == 400
    actions = AuditEntry.objects.filter(outcome="ok").values_list("action", flat=True)
    assert sorted(actions) == [
        "alerts.rule_create",
        "alerts.rule_delete",
        "alerts.rule_enable",
        "alerts.rule_update",
    ]


def test_the_api_creates_lists_and_expires_silences_and_acknowledges(use_clusters, operator):
    [alert] = fire("orders")
    client = client_for(operator)
    body = {"matchers": {"entity": "*/orders"}, "duration_seconds": 600, "reason": "deploy"}
    made = client.post("/api/alerts/silences", body, content_type="application/json")
    assert made.status_code == 200, made.content
    silence = made.json()
    assert silence["state"] == "active" and silence["created_by"] == "otto"
    [listed] = client.get("/api/alerts/silences").json()["silences"]
    assert listed["id"] == silence["id"]
    bad = client.post(
        "/api/alerts/silences", {**body, "duration_seconds": 1}, content_type="application/json"
    )
    assert bad.status_code == 400 and "duration_seconds" in bad.json()["error"]
    ended = client.post(f"/api/alerts/silences/{silence['id']}/expire")
    assert ended.json()["state"] == "ended"
    assert client.post(f"/api/alerts/silences/{silence['id']}/expire").status_code == 400
    acked = client.post(f"/api/alerts/{alert.pk}/acknowledge")
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "otto"
    assert client.post("/api/alerts/999999/acknowledge").status_code == 404
