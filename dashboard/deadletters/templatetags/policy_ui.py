"""Template tags of the letter page's policy parts (`{% load policy_ui %}`).

``letter_policies``: which retry policies acted on the letter (or recorded a dry
run) when it was captured, with their decision, attempt and due time.
"""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.core.display import backoff as backoff_words
from dashboard.deadletters.policies.rules import decisions_of

register = template.Library()


@register.inclusion_tag("deadletters/_letter_policies.html", takes_context=True)
def letter_policies(context: dict[str, Any], letter: Any) -> dict[str, Any]:
    return {"letter": letter, "decisions": decisions_of(letter.pk)}


@register.simple_tag
def policy_backoff(policy: Any) -> str:
    """A retry rule's delays in the wording schedules and dry runs use."""
    return backoff_words(
        policy.delay_seconds, policy.factor, policy.cap_seconds, policy.jitter, lead="first after"
    )
