"""Template tags of scheduled requeues (`{% load schedule_ui %}`).

The letter page's two parts: ``letter_schedule`` (a scheduled letter's due time,
with "Send now" and "Cancel" for operators; the schedule that sent a letter)
and ``letter_schedule_form`` ("Requeue later" in Actions, for pending letters
and operators). ``schedule_what`` and ``schedule_backoff`` say in words what a
schedule chose and how it spreads its letters.
"""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.core.display import backoff as backoff_words
from dashboard.models import DeadLetter, RequeueSchedule

register = template.Library()

SENT = (DeadLetter.Status.REQUEUED, DeadLetter.Status.FAILED_AGAIN)


@register.inclusion_tag("deadletters/_letter_schedule.html", takes_context=True)
def letter_schedule(context: dict[str, Any], letter: DeadLetter) -> dict[str, Any]:
    return {
        "letter": letter,
        "can_act": context.get("can_act", False),
        "scheduled": letter.status == DeadLetter.Status.SCHEDULED,
        "sent_by": letter.schedule_id if letter.status in SENT else None,
    }


@register.inclusion_tag("deadletters/_letter_schedule_form.html", takes_context=True)
def letter_schedule_form(context: dict[str, Any], letter: DeadLetter) -> dict[str, Any]:
    return {
        "letter": letter,
        "show": context.get("can_act", False) and context.get("pending", False),
        "poison_warning": context.get("poison_warning", ""),
        # Where the letter goes (a redirect's target names it), as the page's view says.
        "requeue_to": context.get("requeue_to", ""),
    }


@register.simple_tag
def schedule_what(schedule: RequeueSchedule) -> str:
    """What was chosen: a group, a filter, or letters by id."""
    description = schedule.description or {}
    letters = description.get("letters", schedule.total)
    noun = f"{letters:,} letter{'s' if letters != 1 else ''}"
    chosen = description.get("filter")
    if isinstance(chosen, dict):
        group = chosen.get("group")
        rest = {k: v for k, v in chosen.items() if k != "group" and v not in ("", None)}
        if group and not rest:
            return f"{noun} of group {str(group)[:12]}"
        fields = ", ".join(f"{k}={v}" for k, v in sorted(chosen.items()) if v not in ("", None))
        return f"{noun} matching {fields or 'every pending letter'}"
    return f"{noun} chosen by id"


@register.simple_tag
def schedule_backoff(schedule: RequeueSchedule) -> str:
    """The spread rule in words, or "" when every letter is due at once."""
    backoff = (schedule.parameters or {}).get("backoff")
    if not isinstance(backoff, dict):
        return ""
    return backoff_words(
        backoff.get("base"), backoff.get("factor"), backoff.get("cap"), backoff.get("jitter")
    )
