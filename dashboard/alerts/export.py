"""The enabled alert rules as a Prometheus alerting-rules file, over our own ``/metrics``.

For teams that alert from Prometheus: one group ``mqboard`` with an alerting rule per
enabled rule whose kind has a matching metric in ``dashboard.metrics.prometheus``. The
expressions name only metrics that module exposes; a kind it has no metric for (dead
letters pending or their age, the came-back ratio, nodes, alarms, partitions, jobs,
Celery workers by name) is listed in a YAML comment at the top as not exportable,
never given a made-up metric.

Per rule: the comparison and threshold as in the engine; ``for`` the rule's
``for_seconds``; the rule's cluster a ``cluster="<slug>"`` matcher; its entity pattern a
matcher on the entity's label (``queue``, ``topic``, ``group``, ``dlq`` or ``cluster``):
exact ``=``, a glob ``=~`` with the glob translated to RE2 (whole name, as the engine),
a regular expression ``=~`` as written, wrapped in ``.*(?:...).*`` because the engine
searches anywhere in the name and Prometheus anchors. Labels ``mqboard_rule`` (the
name), ``mqboard_rule_id`` and ``mqboard_kind``; every text a user typed is escaped for
Prometheus's templating (``{{`` is written as a template that prints it).

What Prometheus rules cannot say is left out and noted in the rule's ``description``:
the resolve threshold (Prometheus resolves as soon as the expression is false), the
repeat interval and the channels (Alertmanager's business). ``not_delivering`` covers
queues only (a topic's groups carry no topic label), ``group_drain_seconds`` a group
that drains (the metric is left out when the lag does not shrink), and a window is read
from Prometheus's own history of the gauge, so it needs scrapes across the window.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard.alerts.rules import FIXED as FIXED_KINDS
from dashboard.models import AlertRule

Kind = AlertRule.Kind
OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
GROUP = "mqboard"


@dataclass(frozen=True)
class Rule:
    """What the export needs of one rule (a plain value, for tests and the API)."""

    pk: int
    name: str
    kind: str
    cluster: str | None
    syntax: str
    pattern: str
    comparison: str
    threshold: float
    resolve_threshold: float | None
    for_seconds: float
    window_seconds: float


# Per exportable kind: the (metric, entity label) pairs it reads.
SERIES: dict[str, tuple[tuple[str, str], ...]] = {
    Kind.QUEUE_DEPTH: (("mqboard_queue_messages", "queue"), ("mqboard_topic_messages", "topic")),
    Kind.NO_CONSUMERS: (("mqboard_queue_consumers", "queue"),),
    Kind.GROUP_LAG: (("mqboard_group_lag", "group"),),
    Kind.GROUP_LAG_SECONDS: (("mqboard_group_lag_seconds", "group"),),
    Kind.GROUP_EMPTY: (("mqboard_group_members", "group"),),
    Kind.GROUP_DRAIN_SECONDS: (("mqboard_group_time_to_drain_seconds", "group"),),
    Kind.CLUSTER_UNAVAILABLE: (("mqboard_cluster_up", "cluster"),),
    Kind.DLQ_ARRIVALS: (("mqboard_dlq_arrival_rate", "dlq"),),
    Kind.DEPTH_GROWTH: (
        ("mqboard_queue_messages", "queue"),
        ("mqboard_topic_messages", "topic"),
    ),
    Kind.NOT_DELIVERING: (
        ("mqboard_queue_messages_ready", "queue"),
        ("mqboard_queue_deliver_rate", "queue"),
    ),
}
# The engine's fixed conditions, as PromQL comparisons.
FIXED: dict[str, str] = {
    Kind.NO_CONSUMERS: "== 0",
    Kind.GROUP_EMPTY: "== 0",
    Kind.CLUSTER_UNAVAILABLE: "== 0",
}
WHY_NOT: dict[str, str] = {
    Kind.DLQ_PENDING: "pending letters are the dashboard's own rows; /metrics has no gauge",
    Kind.DLQ_OLDEST_AGE: "the age of the oldest pending letter is not in /metrics",
    Kind.DLQ_CAME_BACK_RATIO: "requeues and returns are not in /metrics",
    Kind.NODE_DOWN: "broker nodes are not in /metrics",
    Kind.BROKER_ALARM: "resource alarms are not in /metrics",
    Kind.PARTITIONS_UNDER_REPLICATED: "partition replicas are not in /metrics",
    Kind.PARTITIONS_OFFLINE: "partition leaders are not in /metrics",
    Kind.JOB_FAILED: "jobs are not in /metrics",
    Kind.CELERY_WORKER_GONE: "/metrics counts consumers per cluster, not each worker by name",
}


def quote(text: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def untemplated(text: str) -> str:
    """Text Prometheus's Go templating prints as it is (labels and annotations are templates)."""
    return text.replace("{{", '{{ "{{" }}')


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds, else milliseconds."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def glob_to_regex(glob: str) -> str:
    """A rule's glob as an RE2 pattern Prometheus anchors: ``*`` any run, ``?`` one
    character, ``[abc]`` / ``[!abc]`` one of / none of (ranges kept), the rest literal;
    the syntax the engine's matcher reads (its escaping is Go RE2's: any ASCII
    punctuation may be escaped)."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = glob.find("]", i + 1 if i < n and glob[i] in "!^" else i)
            if end < 0:
                out.append(re.escape("["))
                continue
            inner = glob[i:end]
            i = end + 1
            negate = inner[:1] in ("!", "^")
            body = inner[1:] if negate else inner
            escaped = "".join(ch if ch == "-" else re.escape(ch) for ch in body)
            out.append(f"[{'^' if negate else ''}{escaped}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def entity_matcher(rule: Rule, label: str) -> str:
    if not rule.pattern:
        return ""
    if rule.syntax == "exact":
        return f"{label}={quote(rule.pattern)}"
    if rule.syntax == "glob":
        return f"{label}=~{quote(glob_to_regex(rule.pattern))}"
    return f"{label}=~{quote(f'.*(?:{rule.pattern}).*')}"


def selector(rule: Rule, metric: str, label: str) -> str:
    matchers = []
    if rule.cluster:
        matchers.append(f"cluster={quote(rule.cluster)}")
    found = entity_matcher(rule, label)
    if found:
        matchers.append(found)
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def condition(rule: Rule) -> str:
    fixed = FIXED.get(rule.kind)
    return fixed or f"{OPS[rule.comparison]} {number(rule.threshold)}"


def _plain(rule: Rule) -> str:
    parts = [f"{selector(rule, m, label)} {condition(rule)}" for m, label in SERIES[rule.kind]]
    return " or ".join(parts)


def _arrivals(rule: Rule) -> str:
    [(metric, label)] = SERIES[rule.kind]
    window = duration(rule.window_seconds)
    return (
        f"avg_over_time({selector(rule, metric, label)}[{window}])"
        f" * {number(rule.window_seconds)} {condition(rule)}"
    )


def _growth(rule: Rule) -> str:
    window = duration(rule.window_seconds)
    parts = []
    for metric, label in SERIES[rule.kind]:
        now = selector(rule, metric, label)
        parts.append(f"({now} - {now} offset {window}) {condition(rule)}")
    return " or ".join(parts)


def _not_delivering(rule: Rule) -> str:
    (ready, label), (rate, _) = SERIES[rule.kind]
    return (
        f"{selector(rule, ready, label)} > 0"
        f" and on(cluster, vhost, queue) {selector(rule, rate, label)} <= 0"
    )


EXPRESSIONS: dict[str, Callable[[Rule], str]] = {
    Kind.DLQ_ARRIVALS: _arrivals,
    Kind.DEPTH_GROWTH: _growth,
    Kind.NOT_DELIVERING: _not_delivering,
}


def expression(rule: Rule) -> str | None:
    """The rule's PromQL expression; None for a kind /metrics has no metric for."""
    if rule.kind not in SERIES:
        return None
    return EXPRESSIONS.get(rule.kind, _plain)(rule)


def metric_names(expr: str) -> set[str]:
    """The ``mqboard_*`` metric names an exported expression reads."""
    return set(re.findall(r"\bmqboard_[a-z_]+", expr))


def alert_name(rule: Rule) -> str:
    """``Mqboard<id><Name>``: letters and digits only, as Prometheus tools expect."""
    words = re.findall(r"[A-Za-z0-9]+", rule.name)
    return f"Mqboard{rule.pk}" + "".join(w[:1].upper() + w[1:] for w in words)[:80]


def _left_out(rule: Rule) -> list[str]:
    notes = []
    resolve = rule.resolve_threshold
    if rule.kind not in FIXED_KINDS and resolve is not None and resolve != rule.threshold:
        notes.append(
            f"The resolve threshold {number(resolve)} is not exported"
            " (Prometheus resolves when the expression is false)"
        )
    if rule.kind == Kind.NOT_DELIVERING:
        notes.append("Queues only: a topic's consumer groups carry no topic label")
    if rule.kind == Kind.GROUP_DRAIN_SECONDS:
        notes.append("A group whose lag does not shrink has no time to drain in /metrics")
    return notes


def alerting_rule(rule: Rule, expr: str) -> dict[str, object]:
    entry: dict[str, object] = {"alert": alert_name(rule), "expr": expr}
    if rule.for_seconds > 0:
        entry["for"] = duration(rule.for_seconds)
    description = " ".join(
        [f"mqboard rule #{rule.pk} ({rule.kind!s}).", *(f"{n}." for n in _left_out(rule))]
    )
    entry["labels"] = {
        "mqboard_rule": untemplated(rule.name),
        "mqboard_rule_id": str(rule.pk),
        "mqboard_kind": str(rule.kind),
    }
    entry["annotations"] = {
        "summary": untemplated(rule.name) + ": value {{ $value }}",
        "description": untemplated(description),
    }
    return entry


def rules_of(rows: list[AlertRule]) -> list[Rule]:
    return [
        Rule(
            pk=r.pk,
            name=r.name,
            kind=r.kind,
            cluster=r.cluster.slug if r.cluster else None,
            syntax=r.syntax,
            pattern=r.pattern,
            comparison=r.comparison,
            threshold=float(r.threshold),
            resolve_threshold=r.resolve_threshold,
            for_seconds=float(r.for_seconds),
            window_seconds=max(1.0, float(r.window_seconds or 300.0)),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Export:
    text: str
    exported: int
    skipped: tuple[tuple[Rule, str], ...]


def export_rules(rules: list[Rule]) -> Export:
    """The YAML file of these rules; rules of kinds without a metric are listed on top."""
    entries, skipped = [], []
    for rule in rules:
        expr = expression(rule)
        if expr is None:
            skipped.append((rule, WHY_NOT.get(rule.kind, "no metric in /metrics")))
        else:
            entries.append(alerting_rule(rule, expr))
    head = [
        "# Prometheus alerting rules exported from mqboard's enabled alert rules,",
        f"# over the metrics of mqboard's /metrics endpoint ({timezone.now():%Y-%m-%d %H:%M} UTC).",
    ]
    if skipped:
        head.append("# Not exportable (no matching metric in /metrics):")
        for rule, why in skipped:
            head.append(f"#   rule #{rule.pk} {rule.name!r} ({rule.kind!s}): {why}")
    document = {"groups": [{"name": GROUP, "rules": entries}]}
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=10_000)
    return Export("\n".join(head) + "\n" + body, len(entries), tuple(skipped))


def get_export() -> Export:
    """The export of every enabled rule, in id order."""
    rows = AlertRule.objects.filter(enabled=True).select_related("cluster").order_by("pk")
    return export_rules(rules_of(list(rows)))


@require_GET
def rules_yaml(request: HttpRequest) -> HttpResponse:
    """``/alerts/rules.yaml``: every user may read it (it holds no secret)."""
    response = HttpResponse(get_export().text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="mqboard-alerts.rules.yaml"'
    return response
