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
}

# A path that is no page: the 404 page is a page too.
MISSING = "/no-such-page/"


def every_page(t: Targets) -> list[Page]:
    """Every page of the list whose URL resolves here, in the order of the navigation."""
    queue = {"vhost": t.vhost, "name": t.queue}
    exchange = {"vhost": t.vhost, "name": t.exchange}
    kafka, topic, group = t.kafka, t.topic, t.group
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


def seed_here(vhost: str, password: str) -> Targets:
    """Make one of each target in the database of DATABASE_URL and on the test brokers."""
    import asyncio

    from confluent_kafka import Consumer, TopicPartition
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from dashboard.models import Job
    from tests.conftest import KAFKA
    from tests.support import deadletter_flow as flow
    from tests.support import deadletters as h

    made = asyncio.run(flow.rabbitmq_dead_letters(vhost, ["a11y-1"], prefix="a11y"))
    [letter] = asyncio.run(flow.rows_of(made.dlq))

    topic = h.create_topic(h.kafka_name("-a11y"))
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

    now = timezone.now()
    job = Job.objects.create(
        kind="deadletters.requeue",
        cluster=letter.cluster,
        created_by=admin,
        state=Job.State.DONE,
        parameters={"letters": 1, "filter": {"dlq": made.dlq}},
        selection=[letter.pk],
        total=1,
        done=1,
        started_at=now,
        finished_at=now,
        progress_at=now,
        verdict="Done: 1 of 1 requeued, 0 failed",
    )
    return Targets(
        rabbitmq="test-rabbitmq",
        vhost=vhost,
        queue=made.work,
        exchange=made.events,
        kafka="test-kafka",
        topic=topic,
        group=group,
        letter=letter.pk,
        job=job.pk,
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
