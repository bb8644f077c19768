"""Captured dead letters scheduled for a requeue, for the dispatcher's tests and benchmark.

Run in a process whose DATABASE_URL is the database a worker uses:

    python -m tests.support.schedule_seed rabbitmq --vhost V --queue Q --count N --delay S
    python -m tests.support.schedule_seed kafka --topic T --count N --delay S --base B

Seeds rows as ``tests.support.requeue_seed`` does (message id or key
``<prefix>-<i>``), then schedules all of them with
``schedule.do_schedule_requeue`` as the operator ``seed-operator``: due after
``--delay`` seconds, spread with backoff when ``--base`` is given. Prints one
JSON line: the schedule's id and each letter's id and due time (epoch seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["rabbitmq", "kafka"])
    parser.add_argument("--vhost", default="/")
    parser.add_argument("--queue", default="")
    parser.add_argument("--topic", default="")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=100, help="body bytes")
    parser.add_argument("--prefix", default=uuid.uuid4().hex[:8])
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--base", type=float, default=None, help="backoff base delay")
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--cap", type=float, default=3600.0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from django.contrib.auth.models import Group, User

    from dashboard.deadletters import schedule
    from dashboard.models import DeadLetter
    from tests.support.requeue_seed import insert

    ids = insert(args.kind, args)
    user, _ = User.objects.get_or_create(username="seed-operator")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    backoff = None
    if args.base is not None:
        backoff = schedule.Backoff(base=args.base, factor=args.factor, cap=args.cap)
    made = asyncio.run(
        schedule.do_schedule_requeue(user=user, ids=ids, delay=args.delay, backoff=backoff)
    )
    due = {
        pk: at
        for pk, at in DeadLetter.objects.filter(schedule=made).values_list("pk", "due_at")
        if at is not None
    }
    print(
        json.dumps(
            {
                "schedule": made.pk,
                "letters": [[pk, due[pk].timestamp()] for pk in ids],
                "prefix": args.prefix,
            }
        )
    )


if __name__ == "__main__":
    main()
