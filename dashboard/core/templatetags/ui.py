"""``{% load ui %}``: badges, times and numbers, formatted by :mod:`dashboard.core.display`."""

from __future__ import annotations

import re
from datetime import datetime

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from dashboard.core import display

register = template.Library()

register.filter("label", display.label)
register.filter("count", display.count)
register.filter("measure", display.measure)
register.filter("rate", display.rate)
register.filter("duration", display.duration)
register.filter("size", display.size)


@register.simple_tag
def badge(code: object, text: str | None = None) -> SafeString:
    """<span class="badge badge-<tone>" data-status="<code>">Label</span>."""
    return format_html(
        '<span class="badge badge-{}" data-status="{}">{}</span>',
        display.tone(code),
        "" if code is None else str(code),
        display.label(code) if text is None else text,
    )


@register.simple_tag
def when(moment: datetime | None, age: bool = False) -> SafeString:
    """A time: UTC in the page, local time with UTC on hover once ui.js runs; ``age=True``
    adds the relative age ("3 min ago"), kept current by ui.js."""
    if moment is None:
        return format_html('<span class="when when-none">{}</span>', "never")
    return format_html(
        '<time class="when" datetime="{}" title="{}"{}>{}</time>',
        display.iso(moment),
        display.utc_text(moment),
        format_html(" data-age") if age else "",
        display.utc_text(moment),
    )


@register.simple_tag
def ui_labels() -> SafeString:
    """The label table ``static/js/ui.js`` reads, once per page (in base.html)."""
    return display.labels_script()


_AFTER_SEPARATOR = re.compile(r"(?<=[./:_-])")


@register.filter
def breakable(name: object) -> SafeString:
    """A name that may wrap only after its separators (``. / : _ -``), never mid-word:
    the escaped name with a ``<wbr>`` after each separator."""
    pieces = _AFTER_SEPARATOR.split("" if name is None else str(name))
    return mark_safe("<wbr>".join(conditional_escape(p) for p in pieces))  # noqa: S308


@register.simple_tag
def idempotency_field() -> SafeString:
    """A write form's hidden one-time key (:mod:`dashboard.core.once`): the form's second
    POST (a double click, a resend) writes nothing."""
    from dashboard.core import once

    return format_html('<input type="hidden" name="{}" value="{}">', once.FIELD, once.new_key())


register.filter("kind_label", display.kind_label)
