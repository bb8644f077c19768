"""How values look on every page: status labels and badge tones, times, numbers with units.

One source for the server (the ``ui`` template tags) and the browser (``static/js/ui.js``
reads :func:`labels_for_browser` from the page), so a status, a time or a rate reads the same
on every page and after every live update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from django.utils.html import json_script
from django.utils.safestring import SafeString

from dashboard.models import AuditEntry, Cluster, DeadLetter, Job

NONE = "\u2013"
"""Shown for a value that is not known (an en dash)."""

# Badge tones, styled once in app.css as .badge-<tone>.
OK, INFO, WARN, DANGER, MUTED = "ok", "info", "warn", "danger", "muted"

_LABELS: dict[str, str] = {}
_TONES: dict[str, str] = {}
_labels_script: SafeString | None = None


def register(code: str, label: str, tone: str = MUTED) -> None:
    """Give a status code its human label and badge tone (features register their own)."""
    global _labels_script
    _LABELS[code] = label
    _TONES[code] = tone
    _labels_script = None


def _register_choices(choices: Mapping[str, str], tones: Mapping[str, str]) -> None:
    for code, label in choices.items():
        register(code, label[:1].upper() + label[1:], tones.get(code, MUTED))


_register_choices(
    dict(DeadLetter.Status.choices),
    {
        "pending": WARN,
        "requeuing": INFO,
        "requeued": OK,
        "discarded": MUTED,
        "failed_again": DANGER,
        "requeue_failed": DANGER,
        "scheduled": INFO,
    },
)
_register_choices(
    dict(Job.State.choices),
    {
        "queued": MUTED,
        "running": INFO,
        "paused": WARN,
        "cancelled": MUTED,
        "done": OK,
        "failed": DANGER,
    },
)
_register_choices(dict(Cluster.Status.choices), {"ok": OK, "down": DANGER, "unknown": MUTED})
_register_choices(dict(AuditEntry.Outcome.choices), {"ok": OK, "failed": DANGER, "refused": WARN})
# A dead letter that came back MQB_DEADLETTER_POISON_AFTER times (the loop guard).
register("poison", "Poison", DANGER)
# A dead letter a retry policy stopped retrying (kept, flagged).
register("parked", "Parked", WARN)


def label(code: object) -> str:
    """The human label of a status code; an unknown code reads as words, never as a raw code."""
    text = "" if code is None else str(code)
    if text in _LABELS:
        return _LABELS[text]
    words = text.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:]


def tone(code: object) -> str:
    return _TONES.get("" if code is None else str(code), MUTED)


def labels_for_browser() -> dict[str, list[str]]:
    """Every registered code -> [label, tone], for ``static/js/ui.js``."""
    return {code: [text, _TONES[code]] for code, text in _LABELS.items()}


def labels_script() -> SafeString:
    """``labels_for_browser()`` in a ``<script id="mqb-labels">`` JSON element, made once
    until a code is registered again (every page carries it)."""
    global _labels_script
    script = _labels_script
    if script is None:
        script = _labels_script = json_script(labels_for_browser(), "mqb-labels")
    return script


# Times: the server writes UTC ("2026-12-06 05:11:45 UTC") in a <time datetime=…>; the browser
# shows local time with the UTC text on hover and a relative age where asked.


def utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # isoformat is C and a third of strftime's time: "2024-05-01 12:00:00+00:00"[:19].
    return moment.astimezone(UTC).isoformat(" ", "seconds")[:19] + " UTC"


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Numbers: counts are whole with thousands separators, rates and other measures have three
# significant digits (at most two decimals), and every unit is written next to its value.


def count(value: float | int | None) -> str:
    if value is None:
        return NONE
    return f"{round(value):,}"


def measure(value: float | int | None, unit: str = "") -> str:
    """A measured value with three significant digits: 4.99, 5.6, 12.3, 1,234."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NONE
    magnitude = abs(value)
    if magnitude >= 100 or value == 0:
        text = f"{round(value):,}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}{unit}"


def rate(value: float | int | None) -> str:
    return measure(value, "/s")


def duration(seconds: float | int | None) -> str:
    """1.5 s, 42 s, 3 min 5 s, 1 h 9 min, 2 d 4 h."""
    if seconds is None:
        return NONE
    seconds = float(seconds)
    if seconds < 60:
        return measure(seconds, " s")
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def backoff(
    base: object, factor: object, cap: object, jitter: object = 0, *, lead: str = "first gap"
) -> str:
    """A backoff in the one wording every page uses:
    "first gap 1 min, \u00d72 each step, at most 1 h, \u00b110% jitter"."""
    try:
        step = float(factor)  # type: ignore[arg-type]
        spread = float(jitter or 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        step, spread = 1.0, 0.0
    words = f"{lead} {duration(base)}"  # type: ignore[arg-type]
    if step != 1:
        words += f", \u00d7{measure(step, '')} each step, at most {duration(cap)}"  # type: ignore[arg-type]
    if spread:
        words += f", ±{round(spread * 100)}% jitter"
    return words


def size(value: float | int | None) -> str:
    """Bytes in binary units: 512 B, 1.5 KiB, 10 MiB."""
    if value is None:
        return NONE
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(amount) < 1024 or unit == "GiB":
            return f"{round(amount):,} B" if unit == "B" else measure(amount, f" {unit}")
        amount /= 1024
    return measure(amount, " TiB")


# Audit actions: every action code the dashboard writes to the audit trail, by its label.
for _code, _text in (
    ("deadletter.requeue", "Dead-letter requeue"),
    ("deadletter.discard", "Dead-letter discard"),
    ("deadletter.discard_all", "Dead-letter discard (all matching)"),
    ("deadletter.purge", "Dead-letter purge"),
    ("deadletter.release_stuck", "Stuck dead-letter release"),
    ("deadletter.retention", "Dead-letter retention"),
    ("deadletter.task.requeue", "Celery task requeue"),
    ("deadletters.manage", "DLQ take-over"),
    ("deadletters.release", "DLQ release"),
    ("deadletters.requeue", "Dead-letter requeue job"),
    ("deadletters.requeue.finished", "Dead-letter requeue job finished"),
    ("deadletters.requeue.revived", "Dead-letter requeue job revived"),
    ("deadletters.preview", "Dead-letter requeue dry run"),
    ("deadletters.schedule", "Scheduled requeue"),
    ("deadletters.schedule_cancel", "Scheduled requeue cancellation"),
    ("deadletters.schedule_now", "Scheduled requeue brought forward"),
    ("deadletters.schedule_send", "Scheduled letters sent"),
    ("deadletters.policy_create", "Retry policy creation"),
    ("deadletters.policy_update", "Retry policy change"),
    ("deadletters.policy_mode", "Retry policy mode change"),
    ("deadletters.policy_move", "Retry policy reorder"),
    ("deadletters.policy_delete", "Retry policy deletion"),
    ("deadletters.redirect_create", "Redirect creation"),
    ("deadletters.redirect_update", "Redirect change"),
    ("deadletters.redirect_delete", "Redirect deletion"),
    ("rabbitmq.move", "Message move job"),
    ("rabbitmq.move.finished", "Message move job finished"),
    ("rabbitmq.move.revived", "Message move job revived"),
    ("job.pause", "Job pause"),
    ("job.resume", "Job resume"),
    ("job.cancel", "Job cancellation"),
    ("rabbitmq.publish", "Message publish"),
    ("rabbitmq.purge", "Queue purge"),
    ("rabbitmq.peek", "Queue peek"),
    ("kafka.produce", "Record produce"),
    ("kafka.purge", "Topic purge"),
    ("kafka.reset_offsets", "Offset reset"),
    ("kafka.reset_offsets.preview", "Offset reset preview"),
):
    register(_code, _text)


def kind_label(name: object) -> str:
    """A broker kind's label from the registry ("RabbitMQ"); an unknown kind reads as words."""
    from brokers.base import ConfigError
    from brokers.registry import kind_named

    try:
        return kind_named(str(name)).label
    except ConfigError:
        return label(name)
