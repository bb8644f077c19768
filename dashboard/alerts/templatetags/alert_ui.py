"""Template tags of the live alert badges (``{% load alert_ui %}``).

``{% alerts_badge %}`` on the overview: "N firing" over every cluster.
``{% queue_alerts_badge slug vhost name %}``, ``{% topic_alerts_badge slug topic %}`` and
``{% group_alerts_badge slug group_id %}`` on the entity pages: the alerts on that
entity of that cluster only (``live.subject``: a queue or topic also shows the
dead-letter alerts of it as a DLQ, in its own vhost). Each counts pending and firing alerts no
silence matches, read from the database as the page renders (the overview's count over every
cluster is reused: ``alerts.badge``); ``static/js/alerts_badge.js`` keeps it
current over ``ws/alerts/``. The entity tags give operators an "Alert on this"
link: the new rule form, prefilled for this entity.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse

from brokers.base.metrics import queue_entity
from dashboard.alerts.badge import PAGE_PART, every_cluster
from dashboard.alerts.engine import silence_matcher
from dashboard.alerts.live import tally
from dashboard.core import display
from dashboard.core.recent import PAGE_PARTS
from dashboard.core.roles import OPERATOR, has_role
from dashboard.models import AlertRule

register = template.Library()
TEMPLATE = "alerts/_badge.html"


def _badge(
    context: Any, cluster: str, subjects: list[str], scripts: bool, rule_kind: str, pattern: str
) -> dict[str, Any]:
    if cluster:
        found = tally(silence_matcher(), cluster)
    else:  # the view's tally when it gives one (rendered in the event loop: no read)
        given = (context.get(PAGE_PARTS) or {}).get(PAGE_PART)
        found = given if given is not None else every_cluster.get()
    if cluster:
        pairs = [found.of(cluster, s) for s in subjects]
        firing, pending = sum(p.firing for p in pairs), sum(p.pending for p in pairs)
    else:
        firing, pending = found.firing, found.pending
    query = {"state": "firing", **({"cluster": cluster} if cluster else {})}
    user = context.get("user")
    new_rule = ""
    if rule_kind and user is not None and has_role(user, OPERATOR):
        new_rule = (
            reverse("alerts-rule-new")
            + "?"
            + urlencode(
                {
                    "name": f"{rule_kind} on {pattern}"[:200],
                    "kind": rule_kind,
                    "cluster": cluster,
                    "syntax": AlertRule.Syntax.EXACT,
                    "pattern": pattern,
                }
            )
        )
    return {
        "cluster": cluster,
        "subjects": json.dumps(subjects),
        "firing": firing,
        "firing_text": f"{display.count(firing)} firing",
        "pending": pending,
        "alerts_url": reverse("alerts") + "?" + urlencode(query),
        "new_rule_url": new_rule,
        "scripts": scripts,
    }


@register.inclusion_tag(TEMPLATE, takes_context=True)
def alerts_badge(context: Any, scripts: bool = True) -> dict[str, Any]:
    """Firing alerts over every cluster (``scripts=False``: the page loads live.js and
    alerts_badge.js itself)."""
    return _badge(context, "", [], scripts, "", "")


@register.inclusion_tag(TEMPLATE, takes_context=True)
def queue_alerts_badge(context: Any, cluster: str, vhost: str, name: str) -> dict[str, Any]:
    subjects = [f"entity:{queue_entity(vhost, name)}", f"dlq:{queue_entity(vhost, name)}"]
    return _badge(context, cluster, subjects, True, AlertRule.Kind.QUEUE_DEPTH, name)


@register.inclusion_tag(TEMPLATE, takes_context=True)
def topic_alerts_badge(context: Any, cluster: str, topic: str) -> dict[str, Any]:
    subjects = [f"entity:{topic}", f"dlq:{topic}"]
    return _badge(context, cluster, subjects, True, AlertRule.Kind.QUEUE_DEPTH, topic)


@register.inclusion_tag(TEMPLATE, takes_context=True)
def group_alerts_badge(context: Any, cluster: str, group_id: str) -> dict[str, Any]:
    subjects = [f"group:{group_id}"]
    return _badge(context, cluster, subjects, True, AlertRule.Kind.GROUP_LAG_SECONDS, group_id)
