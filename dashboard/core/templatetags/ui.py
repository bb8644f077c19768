"""``{% load ui %}``: badges, times and numbers, formatted by :mod:`dashboard.core.display`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape, format_html, format_html_join
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


# -- the site menu ------------------------------------------------------------------
# Every page carries it; as template tags it was about a millisecond a page (ten URL
# reversals and their conditions). Here the URLs are reversed once per process.


def _is(url: str) -> Callable[[str], bool]:
    return lambda path: path == url


def _under(prefix: str, but_not: str = "") -> Callable[[str], bool]:
    return lambda path: path.startswith(prefix) and not (but_not and path.startswith(but_not))


def _kafka(path: str) -> bool:
    return path.startswith("/kafka/") or (path.startswith("/clusters/") and "/kafka/" in path)


_DLQS = "/deadletters/queues/"
_MENU: tuple[tuple[str, str, Callable[[str], Callable[[str], bool]]], ...] = (
    # label, URL name, the rule for "this page is in that section" given the URL
    ("Overview", "overview", _is),
    ("RabbitMQ", "rabbitmq-queues-all", lambda url: _under("/rabbitmq/")),
    ("Kafka", "kafka-topics-all", lambda url: _kafka),
    ("Dead letters", "deadletters-inbox", lambda url: _under("/deadletters/", but_not=_DLQS)),
    ("DLQs", "deadletters-queues", lambda url: _under(_DLQS)),
    ("Live", "metrics", _is),
    ("Consumers", "consumers", _is),
    ("Alerts", "alerts", lambda url: _under("/alerts/")),
    ("Jobs", "jobs", lambda url: _under("/jobs/")),
)


@functools.cache
def _menu() -> tuple[tuple[Callable[[str], bool], SafeString, SafeString], ...]:
    """Each section's rule and its link, as is and marked current; a section whose URL
    does not reverse is left out."""
    made = []
    for label, name, rule in _MENU:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        made.append((rule(url), _link(label, url, False), _link(label, url, True)))
    return tuple(made)


@functools.cache
def _fixed_urls() -> dict[str, str]:
    return {
        "audit": reverse("audit-log"),
        "admin": reverse("admin:index"),
        "logout": reverse("logout"),
    }


@receiver(setting_changed)
def _urls_changed(setting: str, **kwargs: object) -> None:
    if setting == "ROOT_URLCONF":
        _menu.cache_clear()
        _fixed_urls.cache_clear()


def _link(label: str, url: str, current: bool) -> SafeString:
    return format_html(
        '<a href="{}"{}>{}</a>', url, mark_safe(' aria-current="page"') if current else "", label
    )


@register.simple_tag(takes_context=True)
def site_nav(context: Any) -> SafeString:
    """The menu of a logged-in page: its sections (the current one marked), the audit log
    for admins, the Django admin for staff, and who is logged in with the logout form."""
    request = context["request"]
    user = context["user"]
    role = context.get("user_role")
    path = request.path
    fixed = _fixed_urls()
    links = [marked if current(path) else plain for current, plain, marked in _menu()]
    if role == "admin":
        links.append(_link("Audit log", fixed["audit"], path.startswith("/audit/")))
    if user.is_staff:
        links.append(_link("Admin", fixed["admin"], False))
    token = context.get("csrf_token")
    csrf = (
        format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)
        if token and token != "NOTPROVIDED"
        else ""
    )
    return format_html(
        '<nav id="site-nav" class="site-nav" aria-label="Main">\n      {}\n'
        '      <form class="whoami" method="post" action="{}">\n        {}\n'
        '        <span class="who"><span class="who-name">{}</span>'
        ' <span class="who-role">{}</span></span>\n'
        '        <button type="submit" class="topbar-button">Log out</button>\n'
        "      </form>\n    </nav>",
        format_html_join("\n      ", "{}", ((link,) for link in links)),
        fixed["logout"],
        csrf,
        user.get_username(),
        "" if role is None else role,
    )
