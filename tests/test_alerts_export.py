"""The Prometheus alerting-rules export: the YAML parses, matchers say what the rules
match, kinds without a metric are only listed, the page and API serve it to viewers,
and every exported expression names only metrics a real collector's ``/metrics``
response holds (RabbitMQ and Kafka sampled by a real ``manage.py collect``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import re2  # type: ignore[import-untyped]
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dashboard.alerts.export import Rule, export_rules, expression, glob_to_regex, metric_names
from dashboard.alerts.rules import FIXED
from dashboard.deadletters.policies.matching import compile_pattern
from dashboard.models import AlertRule, Cluster
from tests.settings import RUN_ID
from tests.support.alerts import process_log
from tests.support.metrics import (
    base_env,
    clusters_file,
    collector_process,
    commit,
    create_topic,
    declare,
    delete_groups,
    delete_topics,
    produce,
    publish,
    run_django,
    unique,
    wait_for,
)

Kind = AlertRule.Kind

# Series the exported rules use that a sample of both brokers always carries.
MAIN_SERIES = {
    "mqboard_queue_messages",
    "mqboard_queue_consumers",
    "mqboard_group_lag",
    "mqboard_group_lag_seconds",
    "mqboard_dlq_arrival_rate",
    "mqboard_cluster_up",
}


def rule(pk: int, kind: str, **extra: Any) -> Rule:
    fields: dict[str, Any] = {
        "name": f"rule {pk}",
        "cluster": None,
        "syntax": "glob",
        "pattern": "",
        "comparison": "gt",
        "threshold": 5.0,
        "resolve_threshold": None,
        "for_seconds": 0.0,
        "window_seconds": 300.0,
    }
    fields.update(extra)
    return Rule(pk=pk, kind=kind, **fields)


def every_kind() -> list[Rule]:
    return [rule(i, kind, pattern="*") for i, kind in enumerate(Kind.values, start=1)]


def parsed(rules: list[Rule]) -> tuple[str, dict[str, Any]]:
    text = export_rules(rules).text
    return text, yaml.safe_load(text)


def test_it_exports_a_parsing_rules_file_and_lists_kinds_without_a_metric():
    text, document = parsed(every_kind())
    [group] = document["groups"]
    assert group["name"] == "mqboard"
    exported = {r["labels"]["mqboard_kind"]: r for r in group["rules"]}
    unexportable = {
        Kind.DLQ_PENDING, Kind.DLQ_OLDEST_AGE, Kind.DLQ_CAME_BACK_RATIO, Kind.NODE_DOWN,
        Kind.BROKER_ALARM, Kind.PARTITIONS_UNDER_REPLICATED, Kind.PARTITIONS_OFFLINE,
        Kind.JOB_FAILED, Kind.CELERY_WORKER_GONE,
    }  # fmt: skip
    assert set(exported) == set(Kind.values) - unexportable
    comments = [line for line in text.splitlines() if line.startswith("#")]
    for kind in unexportable:
        assert any(f"({kind})" in line for line in comments), kind
    for entry in group["rules"]:
        assert set(entry) >= {"alert", "expr", "labels", "annotations"}
        assert entry["alert"].isalnum()
        assert metric_names(entry["expr"]), entry["expr"]


def test_matchers_follow_the_pattern_syntax_and_the_cluster():
    exact = rule(1, Kind.NO_CONSUMERS, syntax="exact", pattern='task"queue', cluster="local-r")
    glob = rule(2, Kind.GROUP_LAG_SECONDS, pattern="user-*-proc?ssor", threshold=30)
    regex = rule(3, Kind.GROUP_LAG, syntax="regex", pattern="^billing|orders$", comparison="gte")
    assert expression(exact) == (
        'mqboard_queue_consumers{cluster="local-r", queue="task\\"queue"} == 0'
    )
    assert expression(glob) == 'mqboard_group_lag_seconds{group=~"user\\\\-.*\\\\-proc.ssor"} > 30'
    assert expression(regex) == 'mqboard_group_lag{group=~".*(?:^billing|orders$).*"} >= 5'
    _, document = parsed([exact, glob, regex])
    assert [r["expr"] for r in document["groups"][0]["rules"]] == [
        expression(exact),
        expression(glob),
        expression(regex),
    ], "the YAML carries the expressions unchanged"


@pytest.mark.parametrize(
    "glob", ["orders", "svc*.q?", "user-[a-c]*", "[!x]dlq", "a.b+c(d)|e", "we ird $^{}", "[oops"]
)
def test_a_translated_glob_matches_what_the_engine_matches(glob, settings):
    names = ["orders", "svc1.q2", "svc12.q", "user-b1", "user-d1", "adlq", "xdlq", "a.b+c(d)|e",
             "aab+c(d)|e", "we ird $^{}", "[oops", "oops", "ordersX"]  # fmt: skip
    engine = compile_pattern("pattern", "glob", glob)
    assert engine is not None
    exported = re2.compile(glob_to_regex(glob))
    for name in names:
        assert (exported.fullmatch(name) is not None) == engine.matches(name), (glob, name)


def test_for_windows_and_what_prometheus_cannot_say():
    arrivals = rule(
        1, Kind.DLQ_ARRIVALS, syntax="exact", pattern="dlq", threshold=40, window_seconds=20
    )
    lag = rule(2, Kind.GROUP_LAG, for_seconds=1.5, resolve_threshold=2.0)
    growth = rule(3, Kind.DEPTH_GROWTH, window_seconds=60, for_seconds=30)
    _, document = parsed([arrivals, lag, growth])
    first, second, third = document["groups"][0]["rules"]
    assert first["expr"] == 'avg_over_time(mqboard_dlq_arrival_rate{dlq="dlq"}[20s]) * 20 > 40'
    assert "for" not in first
    assert second["for"] == "1500ms"
    assert "resolve threshold 2 is not exported" in second["annotations"]["description"]
    assert third["for"] == "30s" and "offset 60s" in third["expr"]
    assert Kind.NO_CONSUMERS in FIXED, "fixed conditions ignore the rule's comparison"


def test_user_text_is_not_a_prometheus_template():
    hostile = rule(1, Kind.QUEUE_DEPTH, name='deep {{ printf "%s" "x" }} queue\n# not a comment')
    text, document = parsed([hostile])
    [entry] = document["groups"][0]["rules"]
    assert entry["labels"]["mqboard_rule"] == (
        'deep {{ "{{" }} printf "%s" "x" }} queue\n# not a comment'
    )
    assert entry["annotations"]["summary"].startswith('deep {{ "{{" }} printf')
    assert entry["annotations"]["summary"].endswith("{{ $value }}")
    assert entry["alert"] == "Mqboard1DeepPrintfSXQueueNotAComment"
    assert not any(line.startswith("# not a comment") for line in text.splitlines())


# -- served to every user ------------------------------------------------------------------


@pytest.fixture
def stored_rules(db):
    cluster = Cluster.objects.create(slug="export-r", kind="rabbitmq", name="r")
    AlertRule.objects.create(
        name="Orders deep", kind=Kind.QUEUE_DEPTH, cluster=cluster, syntax="exact",
        pattern="orders", threshold=100, for_seconds=60,
    )  # fmt: skip
    AlertRule.objects.create(name="Letters waiting", kind=Kind.DLQ_PENDING, threshold=0)
    AlertRule.objects.create(name="Off", kind=Kind.GROUP_LAG, enabled=False)
    return cluster


def test_a_viewer_downloads_the_yaml_of_the_enabled_rules(client, viewer, stored_rules):
    client.force_login(viewer)
    page = client.get("/alerts/rules/")
    assert b'href="/alerts/rules.yaml"' in page.content
    response = client.get("/alerts/rules.yaml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    document = yaml.safe_load(response.content)
    [entry] = document["groups"][0]["rules"]
    assert entry["expr"] == (
        'mqboard_queue_messages{cluster="export-r", queue="orders"} > 100'
        ' or mqboard_topic_messages{cluster="export-r", topic="orders"} > 100'
    )
    assert entry["for"] == "60s"
    assert b"'Letters waiting' (dlq_pending)" in response.content
    assert b"Off" not in response.content


def test_it_needs_a_login(client, stored_rules):
    assert client.get("/alerts/rules.yaml").status_code in (302, 401, 403)


def test_the_api_gives_the_file_and_what_was_left_out(client, viewer, stored_rules):
    client.force_login(viewer)
    body = client.get("/api/alerts/prometheus-rules").json()
    assert body["exported"] == 1
    assert [(r["name"], r["kind"]) for r in body["not_exported"]] == [
        ("Letters waiting", "dlq_pending")
    ]
    assert yaml.safe_load(body["yaml"])["groups"][0]["rules"][0]["labels"]["mqboard_rule"] == (
        "Orders deep"
    )
    schema = client.get("/api/openapi.json").json()
    operation = schema["paths"]["/api/alerts/prometheus-rules"]["get"]
    assert operation["operationId"] == "exportAlertRulesPrometheus"


# -- against a real /metrics ---------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.rabbitmq
@pytest.mark.kafka
def test_every_expression_names_only_metrics_a_real_collector_exposes(
    served_db, rabbitmq_vhost, tmp_path: Path
):
    rabbit, kafka = f"export-r-{RUN_ID}", f"export-k-{RUN_ID}"
    path = clusters_file(
        tmp_path,
        f"""
[[cluster]]
slug = "{rabbit}"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe="")}"
management_url = "http://127.0.0.1:15672"
username = "guest"
password_env = "EXPORT_RABBIT_PASSWORD"
timeout = 4

[[cluster]]
slug = "{kafka}"
kind = "kafka"
bootstrap_servers = "127.0.0.1:9092"
""",
    )
    queue, dlq = unique("export-q"), unique("export") + ".dlq"
    topic, group = unique("export-t"), unique("export-g")
    for name in (queue, dlq):
        declare(rabbitmq_vhost, name)
    publish(rabbitmq_vhost, queue, 3)
    publish(rabbitmq_vhost, dlq, 2)
    create_topic(topic)
    produce(topic, 5, timestamp_ms=int(time.time() * 1000) - 60_000)
    commit(group, {(topic, 0): 2})
    env = base_env(
        served_db,
        MQB_CLUSTERS_FILE=path,
        EXPORT_RABBIT_PASSWORD="guest",
        MQB_METRICS_RABBITMQ_VHOSTS=rabbitmq_vhost,
        MQB_METRICS_KAFKA_TOPICS=f"^{topic}$",
        MQB_METRICS_TOKEN="export-test-token",
    )
    fetch = (
        "import json; from django.test import Client; "
        "r = Client(HTTP_HOST='127.0.0.1').get('/metrics', "
        "HTTP_AUTHORIZATION='Bearer export-test-token'); "
        "print(json.dumps([r.status_code, r.content.decode()]))"
    )
    try:
        with collector_process(env, "--only", "metrics", "--interval", "1") as process:

            def sampled() -> str | None:
                status, text = run_django(env, fetch)
                assert status == 200
                wanted = (f'queue="{queue}"', f'dlq="{dlq}"', f'group="{group}"', f'"{kafka}"')
                if not all(w in text for w in wanted):
                    return None
                # Rates (the DLQ arrival rate) need a second sample: wait for every series.
                names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
                return text if names >= MAIN_SERIES else None

            try:
                text = wait_for(sampled, timeout=60, what="both clusters in /metrics")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; log:\n{process_log(process)}") from None
    finally:
        delete_groups(group)
        delete_topics(topic)
    exposed = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        exposed.update(sample.name for sample in family.samples)
    _, document = parsed(every_kind())
    named = set()
    for entry in document["groups"][0]["rules"]:
        used = metric_names(entry["expr"])
        assert used <= exposed, f"{entry['alert']}: {used - exposed} not in /metrics"
        named |= used
    with_samples = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    carried = with_samples & named
    assert carried >= MAIN_SERIES, "the main series carry samples from the real brokers"
