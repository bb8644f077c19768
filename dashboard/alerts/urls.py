"""URLs of the alerts pages (included by dashboard/urls.py); their API: alerts.api."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.alerts import channels_page, export, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:alert_id>/acknowledge", views.acknowledge, name="alerts-acknowledge"),
    path("alerts/rules/", views.rules, name="alerts-rules"),
    path("alerts/rules.yaml", export.rules_yaml, name="alerts-rules-yaml"),
    path("alerts/rules/new", views.rule_edit, name="alerts-rule-new"),
    path("alerts/rules/<int:rule_id>/", views.rule_edit, name="alerts-rule-edit"),
    path("alerts/rules/<int:rule_id>/enable", views.rule_enable, name="alerts-rule-enable"),
    path("alerts/rules/<int:rule_id>/delete", views.rule_delete, name="alerts-rule-delete"),
    path("alerts/silences/", views.silences, name="alerts-silences"),
    path("alerts/silences/new", views.silence_new, name="alerts-silence-new"),
    path(
        "alerts/silences/<int:silence_id>/expire",
        views.silence_expire,
        name="alerts-silence-expire",
    ),
    path("alerts/channels/", channels_page.channels, name="alerts-channels"),
]
