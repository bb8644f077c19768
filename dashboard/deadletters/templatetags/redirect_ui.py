"""Template tags of the letter page's redirect parts (`{% load redirect_ui %}`).

``letter_redirect`` fills the "Goes to" pair of the letter's facts: the target a
requeue to its origin would use now, and the redirect that chose it, if any
(the page's view computes it once as ``route``, also for the requeue's confirmation).
"""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.deadletters.redirects import goes_to
from dashboard.deadletters.requeue import stored_letter

register = template.Library()


@register.inclusion_tag("deadletters/_letter_redirect.html", takes_context=True)
def letter_redirect(context: dict[str, Any], letter: Any) -> dict[str, Any]:
    route = context.get("route")
    if route is None:
        route = goes_to(letter.cluster.slug, stored_letter(letter))
    return {"letter": letter, "route": route}
