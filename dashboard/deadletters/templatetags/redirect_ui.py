"""Template tags of the letter page's redirect parts (`{% load redirect_ui %}`)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("deadletters/_letter_redirect.html", takes_context=True)
def letter_redirect(context: dict[str, Any], letter: Any) -> dict[str, Any]:
    return {"letter": letter}
