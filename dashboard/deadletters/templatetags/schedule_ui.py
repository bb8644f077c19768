"""Template tags of the letter page's schedule parts (`{% load schedule_ui %}`)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("deadletters/_letter_schedule.html", takes_context=True)
def letter_schedule(context: dict[str, Any], letter: Any) -> dict[str, Any]:
    return {"letter": letter}


@register.inclusion_tag("deadletters/_letter_schedule_form.html", takes_context=True)
def letter_schedule_form(context: dict[str, Any], letter: Any) -> dict[str, Any]:
    return {"letter": letter}
