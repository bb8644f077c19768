"""Every page a user can reach, in one list, for the every-page browser tests and the screenshots.

Holds no tests. ``every_page(targets)`` builds the list from URL names (and
paths) that resolve in this checkout, so a page added later (``/audit/``)
joins the list as soon as its URL exists. ``Targets`` names the things the
detail pages show (a queue, an exchange, a topic with records, a consumer
group, a captured dead letter, a finished job): ``seed_here`` makes them on
the test services, ``scripts/screenshots.py`` discovers them in a running demo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.urls import NoReverseMatch, Resolver404, resolve, reverse

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1.min.js"

# Roles a page is visited with: anonymous (logged out), operator, admin.
ANONYMOUS, OPERATOR, ADMIN = "anonymous", "operator", "admin"


@dataclass(frozen=True)
class Targets:
    """What the detail pages show: one of each, found or made before the pages are visited."""

    rabbitmq: str  # cluster slug
    vhost: str
    queue: str
    exchange: str
    kafka: str  # cluster slug
    topic: str
    group: str
    letter: int
    job: int
    schedule: int = 1  # a requeue schedule with a waiting letter


@dataclass(frozen=True)
class Page:
    """One page: a file-name-safe name, its path, who visits it and the status it answers."""

    name: str
    path: str
    role: str = OPERATOR
    status: int = 200
    # A button to press before the page is checked (a section that opens on demand).
    press: str = ""
    # An element that is there once the page has drawn itself (pages built by their scripts).
    ready: str = ""
    # The page has its own layout (Swagger UI, Django's admin), not the dashboard's navigation.
    own_layout: bool = False
    # A button on the path's page that leads (by a form POST) to the page checked.
    submit: str = ""


def _reverse(name: str, *args: object, query: dict[str, str] | None = None) -> str | None:
    try:
        path = reverse(name, args=args)
    except NoReverseMatch:
        return None
    return f"{path}?{urlencode(query)}" if query else path


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


# Pages drawn by their own scripts or in their own layout.
SPECIAL: dict[str, dict[str, object]] = {
    "api-docs": {"ready": ".opblock", "own_layout": True},
    "admin": {"own_layout": True},
    # The dry run of a group's requeue: made by this session from the inbox.
    "deadletters-preview": {"submit": "form.group-requeue button", "ready": "#preview-targets"},
}

# A path that is no page: the 404 page is a page too.
MISSING = "/no-such-page/"


def every_page(t: Targets) -> list[Page]:
    """Every page of the list whose URL resolves here, in the order of the navigation."""
    queue = {"vhost": t.vhost, "name": t.queue}
    exchange = {"vhost": t.vhost, "name": t.exchange}
    kafka, topic, group = t.kafka, t.topic, t.group
    preview = _reverse("deadletters-preview", "x" * 32)  # reached from the inbox (SPECIAL)
    wanted: list[tuple[str, str | None, str]] = [
        ("login", _reverse("login"), ANONYMOUS),
        ("overview", _reverse("overview"), OPERATOR),
        ("rabbitmq-home", _reverse("rabbitmq-queues-all"), OPERATOR),
        ("rabbitmq-vhosts", _reverse("rabbitmq-vhosts", t.rabbitmq), OPERATOR),
        ("rabbitmq-queues", _reverse("rabbitmq-queues", t.rabbitmq), OPERATOR),
        ("rabbitmq-queue", _reverse("rabbitmq-queue", t.rabbitmq, query=queue), OPERATOR),
        ("rabbitmq-peek", _reverse("rabbitmq-peek", t.rabbitmq, query=queue), OPERATOR),
        ("rabbitmq-move", _reverse("rabbitmq-move", t.rabbitmq, query=queue), OPERATOR),
        ("rabbitmq-exchanges", _reverse("rabbitmq-exchanges", t.rabbitmq), OPERATOR),
        ("rabbitmq-exchange", _reverse("rabbitmq-exchange", t.rabbitmq, query=exchange), OPERATOR),
        ("rabbitmq-publish", _reverse("rabbitmq-publish", t.rabbitmq, query=exchange), OPERATOR),
        ("kafka-home", _reverse("kafka-topics-all"), OPERATOR),
        ("kafka-cluster", _reverse("kafka-cluster", kafka), OPERATOR),
        ("kafka-topics", _reverse("kafka-topics", kafka), OPERATOR),
        ("kafka-topic", _reverse("kafka-topic", kafka, topic), OPERATOR),
        ("kafka-messages", _reverse("kafka-messages", kafka, topic), OPERATOR),
        ("kafka-produce", _reverse("kafka-produce", kafka, topic), OPERATOR),
        ("kafka-purge", _reverse("kafka-purge", kafka, topic), ADMIN),
        ("kafka-groups", _reverse("kafka-groups", kafka), OPERATOR),
        ("kafka-group", _reverse("kafka-group", kafka, group), OPERATOR),
        ("kafka-reset", _reverse("kafka-reset-offsets", kafka, group), ADMIN),
        ("deadletters-groups", _reverse("deadletters-inbox"), OPERATOR),
        ("deadletters-letters", _reverse("deadletters-inbox", query={"view": "rows"}), OPERATOR),
        ("deadletters-letter", _reverse("deadletters-detail", t.letter), OPERATOR),
        ("deadletters-queues", _reverse("deadletters-queues"), OPERATOR),
        ("deadletters-redirects", _reverse("deadletters-redirects"), ADMIN),
        (
            "deadletters-redirect-new",
            _reverse("deadletters-redirect-new", query={"cluster": t.rabbitmq}),
            ADMIN,
        ),
        ("deadletters-schedules", _reverse("deadletters-schedules"), OPERATOR),
        ("deadletters-schedule", _reverse("deadletters-schedule", t.schedule), OPERATOR),
        ("deadletters-preview", _reverse("deadletters-inbox") if preview else None, OPERATOR),
        ("deadletters-policies", _reverse("deadletters-policies"), ADMIN),
        ("deadletters-policy-new", _reverse("deadletters-policy-new"), ADMIN),
        ("live", _reverse("metrics"), OPERATOR),
        ("live-cluster", _reverse("metrics-cluster", t.rabbitmq), OPERATOR),
        (
            "live-entity",
            _reverse("metrics-entity", t.rabbitmq, query={"type": "queue", **queue}),
            OPERATOR,
        ),
        ("consumers", _reverse("consumers"), OPERATOR),
        ("jobs", _reverse("jobs"), OPERATOR),
        ("job", _reverse("job", t.job), OPERATOR),
        *[
            (n, _reverse(n), OPERATOR)
            for n in (
                "alerts",
                "alerts-rules",
                "alerts-rule-new",
                "alerts-silences",
                "alerts-silence-new",
                "alerts-channels",
            )
        ],
        ("api-docs", "/api/docs", OPERATOR),
        ("admin", _reverse("admin:index"), ADMIN),
        ("audit", "/audit/", ADMIN),
    ]
    pages = [
        Page(name, path, role, **SPECIAL.get(name, {}))  # type: ignore[arg-type]
        for name, path, role in wanted
        if path is not None and _resolves(path.split("?")[0])
    ]
    # The live tail is a section of the queue and topic pages that opens on Start.
    tail = _reverse("rabbitmq-queue", t.rabbitmq, query=queue)
    if tail is not None:
        pages.append(Page("tail", tail, OPERATOR, press=".mqb-tail [data-role=toggle]"))
    pages.append(Page("not-found", MISSING, OPERATOR, status=404))
    return pages


# The page names, known before anything is seeded (for test ids).
PLACEHOLDER = Targets("r", "v", "q", "x", "k", "t", "g", 1, 1)
NAMES = [page.name for page in every_page(PLACEHOLDER)]


# -- seeding on the test services (run in a process using the served database) ---

# Names as long as real ones: 80 characters with dots, dashes and underscores.
LONG_BASE = "a11y.payments-eu-west-1.settlement_reconciliation.batch-v2"
LONG_TOPIC = ".orders-eu-west-1.payment_settlement.reconciliation-v2-a11y"
LONG_TAG = "amq.ctag-settlement-reconciler@ip-10-120-33-201.eu-west-1.compute.internal-{n}"
LONG_EXCEPTION = (
    "Settlement batch 2026-12-06/eu-west-1/0042 could not be reconciled: the ledger entry"
    " for merchant acct_1NfQ7bH2eZvKYlo2C0a8sYqM (currency EUR, amount 1234.56) does not"
    " match the payment-service record pay_3MtwBwLkdIwHu7ix28a3tqPa after 5 attempts;"
    " see https://runbooks.example.com/payments/settlement-reconciliation#ledger-mismatch"
)


def long_vhost(vhost: str) -> str:
    """The seed's own vhost, named as long as real ones; made and deleted with the seed."""
    return f"{vhost}.tenant-0042.payments-eu-west-1.production"


def consumer_tags(n: int) -> list[str]:
    return [LONG_TAG.format(n=i) for i in range(1, n + 1)]


def seed_here(vhost: str, password: str) -> Targets:
    """Make one of each target in the database of DATABASE_URL and on the test brokers.

    As a real demo has them: long names, a queue with consumers (the caller
    attaches them, under ``consumer_tags``: they must outlive this process),
    metrics history for that queue and the cluster, dead letters with
    ``x-death`` headers and a long exception message, a Celery task letter, and
    a finished requeue job some of whose letters came back.
    """
    import asyncio
    import time
    import uuid
    from datetime import UTC, datetime, timedelta

    import httpx
    from confluent_kafka import Consumer, TopicPartition
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from brokers.base.metrics import queue_entity
    from dashboard.models import (
        Cluster,
        DeadLetter,
        Job,
        OriginRedirect,
        RequeueSchedule,
        ThroughputSample,
    )
    from dashboard.models import Consumer as ConsumerRow
    from tests.conftest import GUEST, KAFKA, MGMT
    from tests.support import deadletter_flow as flow
    from tests.support import deadletters as h

    vhost = long_vhost(vhost)
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        http.put(f"/api/vhosts/{h.q(vhost)}").raise_for_status()
        http.put(
            f"/api/permissions/{h.q(vhost)}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()

    task_id = str(uuid.uuid4())
    ids = ["a11y-1", "a11y-2", "a11y-3"]

    async def dead_letters() -> tuple[str, str, str]:
        events, work, dlq = await h.dead_letter_topology(vhost, h.unique(LONG_BASE))
        target = await flow.manage("test-rabbitmq", vhost, dlq)
        # A Celery task message (protocol 2), as a worker rejects it.
        await h.publish_to(
            vhost,
            dlq,
            [b'[["img-42", "s3://images/2026/12/06/img-42.tiff", [64, 256]], {}, {}]'],
            headers={
                "lang": "py", "task": "media.tasks.resize_image", "id": task_id,
                "root_id": task_id, "parent_id": None, "retries": 2,
                "argsrepr": "('img-42', 's3://images/2026/12/06/img-42.tiff', [64, 256])",
                "kwargsrepr": "{}",
            },
            content_type="application/json",
            content_encoding="utf-8",
            correlation_id=task_id,
        )  # fmt: skip
        await h.reject_through(vhost, events, work, ids)

        async def stored() -> bool:
            return await flow.stored_count(dlq) >= len(ids) + 1

        await flow.capture_until(target, stored)
        return events, work, dlq

    events, work, dlq = asyncio.run(dead_letters())
    letters = {r.message_id: r for r in DeadLetter.objects.filter(dlq=dlq)}
    letter = letters[ids[0]]
    DeadLetter.objects.filter(pk=letter.pk).update(
        exception_class="payments.settlement.errors.LedgerMismatchError",
        exception_message=LONG_EXCEPTION,
    )

    topic = h.create_topic(h.kafka_name(LONG_TOPIC))
    h.produce(topic, [(f"k{i}".encode(), f'{{"n": {i}}}'.encode(), []) for i in range(3)])
    group = f"{topic}-group"
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    finally:
        consumer.close()

    admin, _ = User.objects.get_or_create(username="ada")
    admin.set_password(password)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    admin.groups.set([Group.objects.get_or_create(name="admin")[0]])

    # A finished requeue of two letters: one came back as a dead letter since.
    now = timezone.now()
    job = Job.objects.create(
        kind="deadletters.requeue",
        cluster=letter.cluster,
        created_by=admin,
        state=Job.State.DONE,
        parameters={"letters": 2, "filter": {"dlq": dlq}},
        selection=[letters[ids[1]].pk, letters[ids[2]].pk],
        total=2,
        done=2,
        started_at=now - timedelta(seconds=4),
        finished_at=now,
        progress_at=now,
        rate=0.5,
        verdict="Done: 2 of 2 requeued, 0 failed",
        result={"requeued": 2, "failed": 0, "skipped": 0, "errors": []},
    )
    DeadLetter.objects.filter(pk=letters[ids[1]].pk).update(
        status=DeadLetter.Status.REQUEUED, claim_job=job.pk, acted_by=admin, acted_at=now
    )
    DeadLetter.objects.filter(pk=letters[ids[2]].pk).update(
        status=DeadLetter.Status.FAILED_AGAIN, claim_job=job.pk, acted_by=admin, acted_at=now
    )

    # A requeue spread with backoff: one letter sent, one waiting (due in an hour).
    schedule = RequeueSchedule.objects.create(
        created_by=admin,
        description={"letters": 2, "filter": {"dlq": dlq}},
        parameters={
            "start": now.isoformat(),
            "backoff": {"base": 3600, "factor": 2.0, "cap": 7200.0, "jitter": 0.1},
        },
        total=2,
        first_due=now,
        last_due=now + timedelta(hours=1),
    )
    for n, (status, due) in enumerate(
        [
            (DeadLetter.Status.REQUEUED, None),
            (DeadLetter.Status.SCHEDULED, now + timedelta(hours=1)),
        ]
    ):
        copy = DeadLetter.objects.get(pk=letter.pk)
        copy.pk = None
        copy.capture_key = f"{letter.capture_key}:schedule-{n}"
        copy.status, copy.due_at, copy.schedule = status, due, schedule
        copy.save()

    # Twenty minutes of history, sampled every 5 s, as the collector writes it.
    rabbit = Cluster.objects.get(slug="test-rabbitmq")
    kafka = Cluster.objects.get(slug="test-kafka")
    start = time.time() - 20 * 60

    def sample(
        cluster: Cluster, kind: str, entity: str, i: int, **values: object
    ) -> ThroughputSample:
        row = ThroughputSample(
            cluster=cluster,
            entity_type=kind,
            entity=entity,
            resolution="raw",
            time=datetime.fromtimestamp(start + i * 5, UTC),
        )
        for field, value in values.items():
            setattr(row, field, value)
        return row

    rows = []
    for i in range(240):
        wobble = 0.2 * (i % 3)
        rows.append(sample(rabbit, "cluster", "test-rabbitmq", i, depth=1200 + i, ready=1100,
                           unacked=100 + i, publish_rate=48.7 + wobble, deliver_rate=47.9,
                           ack_rate=47.9, consumers=12))  # fmt: skip
        rows.append(sample(rabbit, "queue", queue_entity(vhost, work), i, depth=340 + i % 7,
                           ready=300, unacked=40 + i % 7, publish_rate=12.5 + wobble,
                           deliver_rate=12.25, ack_rate=12.0, consumers=2))  # fmt: skip
        rows.append(sample(kafka, "cluster", "test-kafka", i, depth=88_000 + i * 40,
                           publish_rate=123.4 + wobble, consumers=3))  # fmt: skip
        rows.append(sample(kafka, "topic", topic, i, depth=3, publish_rate=1.5 + wobble))
        rows.append(sample(kafka, "group", group, i, lag=1 + i % 2, lag_seconds=0.8, consumers=1))
    ThroughputSample.objects.bulk_create(rows)

    # Consumers as the collector last saw them: long tags, client names and hosts.
    source = queue_entity(vhost, work)
    for kind, identity, row_source, client, host in [
        ("amqp", f"{consumer_tags(1)[0]} on 10.120.33.201:53412 -> 10.120.0.5:5672 (1)",
         source, "10.120.33.201:53412 -> 10.120.0.5:5672", "10.120.33.201"),
        ("celery", "celery@settlement-reconciler-7d9f8b6c5-x2x9k.payments.svc.cluster.local",
         source, "10.120.33.202:40110 -> 10.120.0.5:5672", "10.120.33.202"),
        ("kafka", f"rdkafka-{uuid.uuid4()}", group,
         "settlement-reconciler-eu-west-1-7d9f8b6c5-x2x9k", "/10.120.33.203"),
    ]:  # fmt: skip
        ConsumerRow.objects.create(
            cluster=kafka if kind == "kafka" else rabbit,
            kind=kind,
            identity=identity,
            source=row_source,
            client=client,
            host=host,
            state="active",
            details={"group": group, "topics": [topic], "partitions": [0]}
            if kind == "kafka"
            else {"vhost": vhost, "queue": work, "tag": consumer_tags(1)[0], "prefetch": 10},
            first_seen=now - timedelta(minutes=20),
            last_seen=now,
        )
    # A redirect with a long note, for the redirects page (and the letter it moves).
    OriginRedirect.objects.create(
        cluster=rabbit,
        vhost=vhost,
        match={"exchange": events, "routing_key": ""},
        target={"exchange": f"{events}.v2", "routing_key": ""},
        note=LONG_EXCEPTION[:200],
    )

    # A dry-run retry policy that recorded a decision on the letter (policies and letter pages).
    from dashboard.models import PolicyDecision, RetryPolicy

    # Scoped to the seeded DLQ: letters of other tests on this database stay unmatched.
    policy = RetryPolicy.objects.create(
        name="Retry orders later", match_dlq=letter.dlq, dry_run=True
    )
    PolicyDecision.objects.create(
        policy=policy, policy_name=policy.name, dead_letter=letter, at=now, action="retry",
        due_at=now + timedelta(minutes=1), dry_run=True,
    )  # fmt: skip

    # Alert channels in each state (the channels page's badges and long error).
    from dashboard.models import AlertChannel

    AlertChannel.objects.get_or_create(
        name="ops-hook", defaults=dict(url_env="MQB_A11Y_HOOK", last_success_at=now)
    )
    failing = dict(kind="teams", url_env="MQB_A11Y_TEAMS", last_failure_at=now)
    failing.update(consecutive_failures=3, last_error="no URL: MQB_A11Y_TEAMS is not set")
    AlertChannel.objects.get_or_create(name="team-chat", defaults=failing)
    AlertChannel.objects.get_or_create(
        name="mail-oncall", defaults=dict(kind="email", url_env="MQB_A11Y_MAIL")
    )

    return Targets(
        rabbitmq="test-rabbitmq",
        vhost=vhost,
        queue=work,
        exchange=events,
        kafka="test-kafka",
        topic=topic,
        group=group,
        letter=letter.pk,
        job=job.pk,
        schedule=schedule.pk,
    )


# For ``python -c``: seed, then print the targets as the last line of JSON.
SEED = """
import json, sys
import django
django.setup()
from dataclasses import asdict
from tests.support import pages
print(json.dumps(asdict(pages.seed_here(sys.argv[1], sys.argv[2]))))
"""


def targets_from_json(text: str) -> Targets:
    return Targets(**json.loads(text))


# -- axe-core: violations of impact serious or critical --

SERIOUS = {"serious", "critical"}

# The rules whose outcome depends on colours alone: what a second colour scheme can change
# (the dark scheme sets other values of the same colour properties, static/css/app.css).
COLOUR_RULES = ("color-contrast", "link-in-text-block")

AXE_RUN = """async (rules) => {
  const options = {resultTypes: ["violations"]};
  if (rules) options.runOnly = {type: "rule", values: rules};
  const result = await axe.run(document, options);
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))
  }));
}"""


def switch_scheme(page: Any, scheme: str) -> None:
    """The open page in colour scheme ``scheme``, once the colour transitions it starts have ended
    (Django's admin eases its links' colours: axe would read a colour half-way)."""
    page.emulate_media(color_scheme=scheme)
    assert page.evaluate(f"matchMedia('(prefers-color-scheme: {scheme})').matches")
    # A transition that another replaces is cancelled: its promise rejects, and that is an end too.
    page.evaluate("() => Promise.allSettled(document.getAnimations().map(a => a.finished))")


def axe_violations(page: Any, rules: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page`` (only ``rules`` when given)."""
    if page.evaluate("typeof window.axe") != "object":
        page.add_script_tag(path=str(AXE))
        assert page.evaluate("typeof window.axe") == "object", "axe-core was not injected"
    return [
        v for v in page.evaluate(AXE_RUN, list(rules) if rules else None) if v["impact"] in SERIOUS
    ]
