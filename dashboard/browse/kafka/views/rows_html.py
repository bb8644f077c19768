"""Table rows of the long Kafka lists (records, topics, groups), built in Python.

These tables are the bulk of their pages: the template engine spent ~30 ms on
100 records and ~4 ms on 50 groups, this a tenth of that. Every piece of
broker data (names, keys, values, header names and values, notes, errors)
goes through ``escape`` (or ``quote`` in URLs); nothing from a broker is ever
marked safe without it.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable
from urllib.parse import quote

from django.utils.safestring import SafeString, mark_safe

from dashboard.browse.kafka import Decoded, GroupSummary, RecordView, TopicSummary
from dashboard.core import display

# What django's escape() does (html.escape), without its lazy-string and SafeString
# wrapping: every argument here is a str, and a row is marked safe once, whole.
escape = html.escape

NULL = '<span class="null muted">null</span>'
EMPTY = '<span class="null muted">empty</span>'
NONE = '<span class="null muted">none</span>'

# Consumer group states (as Kafka names them) and the Kafka-only markers, as badges.
GROUP_STATES = {
    "Stable": display.OK,
    "Empty": display.MUTED,
    "Dead": display.MUTED,
    "PreparingRebalance": display.WARN,
    "CompletingRebalance": display.WARN,
    "Assigning": display.WARN,
    "Reconciling": display.WARN,
    "Unknown": display.MUTED,
}
for _state, _tone in GROUP_STATES.items():
    display.register(
        f"group_{_state.lower()}",
        "".join(" " + c.lower() if c.isupper() and i else c for i, c in enumerate(_state)),
        _tone,
    )
display.register("internal", "Internal", display.MUTED)
display.register("read_only", "Read-only", display.MUTED)
display.register("protected", "Protected", display.WARN)
display.register("controller", "Controller", display.INFO)
display.register("under_replicated", "Under-replicated", display.WARN)
display.register("truncated", "Truncated", display.WARN)
display.register("offline", "Offline", display.DANGER)


def state_code(state: str) -> str:
    """The badge code of a group state: "PreparingRebalance" -> group_preparingrebalance."""
    return "group_" + "".join(c for c in state.lower() if c.isalnum())


def _badge(code: str) -> str:
    return (
        f'<span class="badge badge-{display.tone(code)}" data-status="{escape(code)}">'
        f"{escape(display.label(code))}</span>"
    )


def _preview(d: Decoded, size: int) -> str:
    if d.format == "null":
        return NULL
    if d.format == "empty":
        return EMPTY
    # One line: pretty-printed JSON and hex dumps are flattened for the preview.
    text = " ".join(d.text[: size * 4].split())
    if len(text) > size or len(d.text) > size * 4:
        text = text[: size - 1] + "…"
    return f"<code>{escape(text)}</code>"


def _part(d: Decoded, download: str) -> str:
    if d.format == "null":
        return NULL
    if d.format == "empty":
        return EMPTY
    parts = [
        f'<span class="fmt">{escape(d.format)}</span> '
        f'<span class="size muted">{display.size(d.size)}</span>'
    ]
    if d.truncated:
        parts.append(
            f' {_badge("truncated")} <a href="{escape(download)}" download>'
            f"download all {display.count(d.size)} bytes</a>"
        )
    if d.note:
        parts.append(f' <span class="note muted">{escape(d.note)}</span>')
    parts.append(f'\n<pre class="body">{escape(d.text)}</pre>')
    return "".join(parts)


def _headers(view: RecordView) -> str:
    if not view.headers:
        return '<p class="null muted">none</p>'
    rows = "".join(
        f"<tr><td><code>{escape(h.key)}</code></td><td>"
        f"{NULL if h.type_name == 'null' else '<code>' + escape(h.display) + '</code>'}</td></tr>"
        for h in view.headers
    )
    return f'<table class="table headers"><tbody>{rows}</tbody></table>'


def _row(view: RecordView, download_base: str) -> str:
    r = view.record
    base = f"{download_base}{r.partition}/{r.offset}/"
    if r.timestamp is not None:
        broker = (
            ' <span class="note muted">(broker)</span>' if r.timestamp_type == "log append" else ""
        )
        utc = display.utc_text(r.timestamp)
        when = (
            f'<time class="when" datetime="{display.iso(r.timestamp)}" title="{utc}">{utc}</time>'
            f"{broker}"
        )
    else:
        when = NONE
    count = len(view.headers)
    summary = "details"
    if count:
        summary += f" · {count} header{'s' if count != 1 else ''}"
    if view.value.truncated:
        summary += " · truncated"
    return (
        f'<tr class="record" data-partition="{r.partition}" data-offset="{r.offset}">'
        f'<td class="num">{r.partition}</td><td class="num">{r.offset}</td><td>{when}</td>'
        f'<td class="key">{_preview(view.key, 80)}</td>'
        f'<td class="value">{_preview(view.value, 160)}'
        f"<details><summary>{summary}</summary>"
        f"<h3>Headers</h3>{_headers(view)}"
        f"<h3>Key</h3>{_part(view.key, base + 'key')}"
        f"<h3>Value</h3>{_part(view.value, base + 'value')}"
        "</details></td></tr>\n"
    )


def record_rows(views: Iterable[RecordView], download_base: str) -> SafeString:
    """``<tr>`` rows for ``views``; ``download_base`` ends with ``/records/``."""
    # Safe: every broker-supplied string above went through escape().
    return mark_safe("".join(_row(v, download_base) for v in views))  # noqa: S308


ESTIMATE = (
    ' <abbr class="estimate" title="compacted topic: high - low watermark counts offsets,'
    ' not records">(estimate)</abbr>'
)


def _topic_row(t: TopicSummary, topic_base: str) -> str:
    name = escape(t.name)
    badges = f" {_badge('internal')}" if t.internal else ""
    if t.error:
        badges += f' <span class="error">{escape(t.error)}</span>'
    messages = "unknown" if t.messages is None else display.count(t.messages)
    if t.messages is not None and t.compacted:
        messages += ESTIMATE
    warn = " warn" if t.under_replicated or t.offline else ""
    offline = f" ({t.offline} offline)" if t.offline else ""
    if warn:
        offline += f" {_badge('under_replicated')}"
    return (
        f'<tr data-topic="{name}"><td class="name">'
        f'<a href="{escape(topic_base + quote(t.name))}/">{name}</a>'
        f'{badges}</td><td class="num">{t.partitions}</td>'
        f'<td class="num">{t.replication_factor}</td>'
        f'<td class="num" data-field="messages">{messages}</td>'
        f'<td class="num{warn}">{t.under_replicated}{offline}</td>'
        f"<td>{escape(t.cleanup_policy or 'unknown')}</td></tr>\n"
    )


def topic_rows(topics: Iterable[TopicSummary], topic_base: str) -> SafeString:
    # Safe: names, errors and policies went through escape() (URLs through quote()).
    return mark_safe("".join(_topic_row(t, topic_base) for t in topics))  # noqa: S308


# Rows are a function of their GroupSummary (frozen, hashable) and the two link
# prefixes: a page shown again before its groups change reuses its rows.
@functools.lru_cache(maxsize=4096)
def _group_row(g: GroupSummary, group_base: str, topic_base: str) -> str:
    gid = escape(g.group_id)
    error = f' <span class="error">{escape(g.error)}</span>' if g.error else ""
    kind = escape(g.type) + (f" / {escape(g.protocol)}" if g.protocol else "")
    if not g.has_commits:
        lag = '<span class="null muted">no commits</span>'
    else:
        lag = "unknown" if g.lag is None else display.count(g.lag)
    topics = ", ".join(
        f'<a href="{escape(topic_base + quote(t))}/">{escape(t)}</a>' for t in g.topics
    )
    members = "unknown" if g.members is None else display.count(g.members)
    return (
        f'<tr data-group="{gid}"><td class="name">'
        f'<a href="{escape(group_base + quote(g.group_id))}">{gid}</a>'
        f"{error}</td>"
        f"<td>{_badge(state_code(g.state))}</td>"
        f'<td>{kind}</td><td class="num">{members}</td>'
        f'<td class="num" data-field="lag">{lag}</td>'
        f"<td>{topics or NONE}</td></tr>\n"
    )


def group_rows(groups: Iterable[GroupSummary], group_base: str, topic_base: str) -> SafeString:
    # Safe: ids, states, types, errors and topics went through escape() / quote().
    return mark_safe(  # noqa: S308
        "".join(_group_row(g, group_base, topic_base) for g in groups)
    )
