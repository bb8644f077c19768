"""Many captured dead letters at once, for the bulk-requeue fault test and benchmark.

Run in a process whose DATABASE_URL is the database a worker uses:

    python -m tests.support.requeue_seed rabbitmq --vhost V --queue Q --count N [--start-job]
    python -m tests.support.requeue_seed kafka --topic T --count N [--start-job]

Rows look like captured letters of the default local clusters
(``local-rabbitmq``, ``local-kafka``): RabbitMQ letters from the default
exchange with routing key Q (so requeued to queue Q), each with message id
``<prefix>-<i>``; Kafka letters from topic T, key ``<prefix>-<i>``. With
``--start-job`` the bulk requeue job of all of them is started as the
operator ``seed-operator`` (queued for the worker) and its id printed.

Rows go in as capture stores them (``insert_dead_letters``: COPY on PostgreSQL,
one ``executemany`` on SQLite): ``bulk_create``'s multi-row INSERT takes about
a second and a half per 1,000 rows on PostgreSQL, over two minutes for 100,000.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from typing import Any

import django


def rows(kind: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The letters as ``{attname: value}``; fields not named take their defaults."""
    from dashboard.core.clusters import sync_cluster_rows
    from dashboard.models import DeadLetter

    clusters = sync_cluster_rows()
    body = (b'{"n": %d, "pad": "' + b"x" * max(0, args.size - 30) + b'"}')[: max(args.size, 16)]
    made = []
    for i in range(args.count):
        key = f"{args.prefix}-{i}"
        value = body.replace(b"%d", str(i).encode()) if b"%d" in body else body
        common: dict[str, Any] = {
            "capture_key": f"seed:{args.prefix}:{i}",
            "reason": "rejected",
            "fingerprint": "seed",
            "body": value,
            "body_size": len(value),
            "status": DeadLetter.Status.PENDING,
        }
        if kind == "rabbitmq":
            made.append(
                {
                    "cluster_id": clusters["local-rabbitmq"].pk,
                    "vhost": args.vhost,
                    "dlq": f"{args.queue}.dlq",
                    "message_id": key,
                    "origin_exchange": "",
                    "origin_routing_key": args.queue,
                    "origin_queue": args.queue,
                    "properties": {"message_id": key, "delivery_mode": 2},
                    "headers": {},
                    **common,
                }
            )
        else:
            made.append(
                {
                    "cluster_id": clusters["local-kafka"].pk,
                    "dlq": f"{args.topic}.DLT",
                    "origin_topic": args.topic,
                    "origin_partition": 0,
                    "origin_offset": i,
                    "key": key.encode(),
                    "headers": [],
                    **common,
                }
            )
    return made


def insert(kind: str, args: argparse.Namespace) -> list[int]:
    """Store the letters of ``rows``: their ids, in order."""
    from django.db import transaction

    from dashboard.deadletters.bulk_insert import insert_dead_letters
    from dashboard.models import DeadLetter

    made = rows(kind, args)
    with transaction.atomic():
        for start in range(0, len(made), 5000):
            insert_dead_letters(made[start : start + 5000], ignore_conflicts=False)
    return list(
        DeadLetter.objects.filter(capture_key__startswith=f"seed:{args.prefix}:")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["rabbitmq", "kafka"])
    parser.add_argument("--vhost", default="/")
    parser.add_argument("--queue", default="")
    parser.add_argument("--topic", default="")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=200, help="body bytes")
    parser.add_argument("--prefix", default=uuid.uuid4().hex[:8])
    parser.add_argument("--start-job", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.contrib.auth.models import Group, User

    from dashboard.deadletters import requeue_job

    ids = insert(args.kind, args)
    print(f"seeded {len(ids)}", file=sys.stderr)
    if args.start_job:
        user, _ = User.objects.get_or_create(username="seed-operator")
        user.groups.add(Group.objects.get_or_create(name="operator")[0])
        job = asyncio.run(requeue_job.do_start_bulk_requeue(user=user, ids=ids))
        print(job.pk)


if __name__ == "__main__":
    main()
