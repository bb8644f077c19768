"""Template tags of the letter page's policy parts (`{% load policy_ui %}`).

``letter_policies``: which retry policies acted on the letter (or recorded a dry
run) when it was captured, with their decision, attempt and due time.
"""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.deadletters.policies.rules import decisions_of

register = template.Library()


@register.inclusion_tag("deadletters/_letter_policies.html", takes_context=True)
def letter_policies(context: dict[str, Any], letter: Any) -> dict[str, Any]:
    return {"letter": letter, "decisions": decisions_of(letter.pk)}
