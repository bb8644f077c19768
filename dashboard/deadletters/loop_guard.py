"""The loop guard: a message that keeps coming back is *poison*, never retried automatically.

A letter "came back" once for every time the dashboard requeued the message and
it dead-lettered again. Capture counts it two ways and keeps the larger: the
message's own ``x-mqboard-requeue-count`` header (every requeue sets it one
higher, whoever did it) and the came-back chain the verdict builds
(``failed_again_as``: the requeued row it came back from, plus one). A letter
that came back ``MQB_DEADLETTER_POISON_AFTER`` times or more is flagged
``poison`` when it is captured.

A person can still requeue a poison letter by hand (the confirmation warns);
automatic retries (schedules, policies) ask :func:`may_retry_automatically`
first and leave it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from dashboard.models import DeadLetter


def poison_after() -> int:
    """How many comebacks make a letter poison (at least 1)."""
    return max(1, int(settings.MQB_DEADLETTER_POISON_AFTER))


def is_poison(came_back: int, after: int | None = None) -> bool:
    """``after``: ``poison_after()`` read by the caller (once for a whole batch)."""
    return came_back >= (poison_after() if after is None else after)


def may_retry_automatically(letter: DeadLetter) -> bool:
    """Whether a schedule or policy may requeue ``letter`` on its own: never a poison one."""
    return not letter.poison


def flag_comebacks(cluster_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """After the verdict linked requeued rows to the new ``rows`` (same transaction): each new
    row that one came back as counts one more comeback than it; poison is set again from the
    total. Returns how many new rows are poison."""
    keys = [r["capture_key"] for r in rows]
    if not keys:
        return 0
    new = DeadLetter.objects.filter(cluster_id=cluster_id, capture_key__in=keys)
    linked = DeadLetter.objects.filter(failed_again_as__in=new).values_list(
        "failed_again_as_id", "came_back"
    )
    before: dict[int, int] = {}
    for pk, came_back in linked:
        before[pk] = max(before.get(pk, 0), came_back + 1)
    for pk, came_back in new.filter(pk__in=list(before)).values_list("pk", "came_back"):
        total = max(came_back, before[pk])
        DeadLetter.objects.filter(pk=pk).update(came_back=total, poison=is_poison(total))
    return new.filter(poison=True).count()


def warning(letter: DeadLetter) -> str:
    """What a requeue's confirmation adds for a poison letter ("" for any other)."""
    if not letter.poison:
        return ""
    times = f"{letter.came_back} time{'s' if letter.came_back != 1 else ''}"
    return f" Warning: it is poison, it came back {times} after being requeued."


def bulk_warning(poison: int) -> str:
    """What a bulk requeue's confirmation adds when ``poison`` of its letters are poison."""
    if not poison:
        return ""
    letters = f"{poison} of them {'is' if poison == 1 else 'are'}"
    return (
        f" Warning: {letters} poison (came back {poison_after()} times or more"
        " after being requeued)."
    )
