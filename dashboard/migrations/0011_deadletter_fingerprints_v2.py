"""Recompute the fingerprint of every stored dead letter with today's grouping rules.

The fingerprint's rules went from version 1 to 2 (a failure's class counts by its own name,
numbers after letters become placeholders), so letters stored before kept version-1
fingerprints and never grouped with letters captured since. This migration imports the
current ``brokers.decode.fingerprint.fingerprint`` on purpose, not a frozen copy: its job is to
bring stored rows to the rules the code groups by now.

A row keeps what the fingerprint was made of: origin queue and exchange or topic, reason,
exception class and message, the Celery task's name (``failure_details["task"]``). What it
does not keep exactly is made up as capture did:

- the kind of failure metadata ("amqp" or "kafka"): by the origin (a topic is Kafka's) and
  else by the cluster's kind;
- an origin that was known but empty (the default exchange, no queue) reads like an unknown
  one; both are tried.

A row whose fingerprint already equals one of those candidates is current and left alone;
any other gets the most likely candidate. Earlier failures of a Kafka record
(``failure_details["history"]``) get theirs recomputed the same way. Rows are read and written
in batches of ``BATCH``, each batch in its own transaction. Reversing changes nothing: the old
fingerprints cannot be computed again, and current ones are no harm.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, transaction

from brokers.decode.fingerprint import fingerprint

BATCH = 1000
FIELDS = (
    "id", "cluster__kind", "dlq", "origin_exchange", "origin_queue", "origin_topic", "reason",
    "exception_class", "exception_message", "fingerprint", "failure_details",
)  # fmt: skip


def candidates(row: dict[str, Any]) -> list[str]:
    """The fingerprints a stored letter may have had under today's rules, likeliest first."""
    details = row["failure_details"] if isinstance(row["failure_details"], dict) else {}
    task = details.get("task")
    task_name = str(task.get("name") or "") if isinstance(task, dict) else ""
    if row["origin_topic"]:
        kinds = ["kafka", "amqp"]
        origins = [f"topic:{row['origin_topic']}"]
    else:
        kinds = ["kafka", "amqp"] if row["cluster__kind"] == "kafka" else ["amqp", "kafka"]
        if row["origin_queue"] or row["origin_exchange"]:
            origins = [f"queue:{row['origin_queue']}|exchange:{row['origin_exchange']}"]
        else:
            origins = [f"unknown:dlq:{row['dlq']}", "queue:|exchange:"]
    return [
        fingerprint(
            origin=f"{kind}:{origin}",
            reason=row["reason"],
            exception_class=row["exception_class"],
            exception_message=row["exception_message"],
            task_name=task_name,
        )
        for kind in kinds
        for origin in origins
    ]


def history_of(details: Any, dlq: str) -> tuple[Any, bool]:
    """``failure_details`` with its earlier failures' fingerprints recomputed; changed?"""
    if not isinstance(details, dict) or not isinstance(details.get("history"), list):
        return details, False
    history = []
    changed = False
    for earlier in details["history"]:
        if not isinstance(earlier, dict):
            history.append(earlier)
            continue
        topic = earlier.get("topic")
        now = fingerprint(
            origin=f"kafka:topic:{topic}" if topic else f"kafka:unknown:dlq:{dlq}",
            reason=str(earlier.get("reason") or ""),
            exception_class=str(earlier.get("exception_class") or ""),
            exception_message=str(earlier.get("exception_message") or ""),
        )
        changed = changed or earlier.get("fingerprint") != now
        history.append({**earlier, "fingerprint": now})
    return {**details, "history": history}, changed


def recompute(apps: Any, schema_editor: Any) -> None:
    """Every stored letter's fingerprint (and its earlier failures') by today's rules."""
    dead_letter = apps.get_model("dashboard", "DeadLetter")
    last = 0
    while True:
        rows = list(
            dead_letter.objects.filter(id__gt=last).order_by("id").values(*FIELDS)[:BATCH]
        )
        if not rows:
            return
        last = rows[-1]["id"]
        changes = []
        for row in rows:
            found = candidates(row)
            details, history_changed = history_of(row["failure_details"], row["dlq"])
            current = row["fingerprint"] if row["fingerprint"] in found else found[0]
            if current != row["fingerprint"] or history_changed:
                changes.append(
                    dead_letter(id=row["id"], fingerprint=current, failure_details=details)
                )
        with transaction.atomic():
            dead_letter.objects.bulk_update(changes, ["fingerprint", "failure_details"])


class Migration(migrations.Migration):
    atomic = False  # one transaction per batch: a large table is not held locked throughout

    dependencies = [("dashboard", "0010_auditentry_filters")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop, elidable=True)]
