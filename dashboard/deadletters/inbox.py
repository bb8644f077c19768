"""Reading the dead-letter inbox: filters, groups by failure, rows, one letter in detail.

Everything here reads the database only (the collector keeps it filled), so the
functions are synchronous; async views call them through ``sync_to_async``.
``inbox_groups`` and ``inbox_rows`` are the pages' reads: the same answers, reused
by a web process while no letter changed (``dashboard.core.letter_counts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import Coalesce

from brokers.base import ConfigError
from brokers.decode import decode_body, decode_headers, decode_x_death
from brokers.decode.fingerprint import class_name
from brokers.decode.headers import header_pairs
from brokers.decode.render import as_datetime, display_leaf, render
from brokers.decode.values import from_json, kafka_headers_from_json
from brokers.registry import kind_named
from dashboard.core import letter_counts
from dashboard.core.display import label, utc_text
from dashboard.core.params import InvalidInput, parse_moment
from dashboard.models import AuditEntry, DeadLetter

PAGE_SIZE = 50
STATUSES = [s.value for s in DeadLetter.Status]
FILTER_FIELDS = (
    "cluster", "dlq", "origin", "reason", "status", "since", "until", "text", "group", "poison",
    "parked",
)  # fmt: skip


@dataclass(frozen=True)
class InboxFilter:
    """What the user filters on; every field is optional ("" means any)."""

    cluster: str = ""
    dlq: str = ""
    origin: str = ""
    reason: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""
    group: str = ""  # a fingerprint
    poison: bool = False  # only letters the loop guard flagged
    parked: bool = False  # only letters a retry policy parked

    @classmethod
    def from_params(cls, params: Any) -> InboxFilter:
        """From a QueryDict or a JSON object; times are ISO 8601."""

        def text(name: str) -> str:
            value = params.get(name) or ""
            return str(value).strip()[:512]

        def moment(name: str) -> datetime | None:
            value = text(name)
            return parse_moment(value, name=name, error=InvalidInput) if value else None

        status = text("status")
        if status and status not in STATUSES:
            raise InvalidInput(f"status: one of {', '.join(STATUSES)}")
        return cls(
            cluster=text("cluster"),
            dlq=text("dlq"),
            origin=text("origin"),
            reason=text("reason"),
            status=status,
            since=moment("since"),
            until=moment("until"),
            text=text("text"),
            group=text("group"),
            poison=text("poison").lower() in ("1", "true", "on", "yes"),
            parked=text("parked").lower() in ("1", "true", "on", "yes"),
        )

    def as_params(self) -> dict[str, str]:
        values = {
            "cluster": self.cluster,
            "dlq": self.dlq,
            "origin": self.origin,
            "reason": self.reason,
            "status": self.status,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "text": self.text,
            "group": self.group,
            "poison": "1" if self.poison else "",
            "parked": "1" if self.parked else "",
        }
        return {k: v for k, v in values.items() if v}

    @property
    def since_input(self) -> str:
        """``since`` as a datetime-local input's value, in UTC (the page shows it in local time)."""
        return utc_input(self.since)

    @property
    def until_input(self) -> str:
        return utc_input(self.until)


def utc_input(moment: datetime | None) -> str:
    """A moment as "YYYY-MM-DDTHH:MM" in UTC, for a datetime-local input ("" for none)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""


SHORT_ID = 8
"""How many characters of a long message id the letters table shows (all of it on hover)."""


def short_id(value: str) -> str:
    return value if len(value) <= SHORT_ID + 1 else value[:SHORT_ID] + "\u2026"


CLAIMABLE_STATUSES = (DeadLetter.Status.PENDING, DeadLetter.Status.REQUEUE_FAILED)
"""The statuses a requeue takes (``requeue.CLAIMABLE``)."""


def filtered(spec: InboxFilter) -> QuerySet[DeadLetter]:
    rows = DeadLetter.objects.all()
    if spec.cluster:
        rows = rows.filter(cluster__slug=spec.cluster)
    if spec.dlq:
        rows = rows.filter(dlq=spec.dlq)
    if spec.origin:
        rows = rows.filter(
            Q(origin_exchange__icontains=spec.origin)
            | Q(origin_routing_key__icontains=spec.origin)
            | Q(origin_queue__icontains=spec.origin)
            | Q(origin_topic__icontains=spec.origin)
        )
    if spec.reason:
        rows = rows.filter(
            Q(reason__icontains=spec.reason) | Q(exception_class__icontains=spec.reason)
        )
    if spec.status:
        rows = rows.filter(status=spec.status)
    if spec.since:
        rows = rows.filter(captured_at__gte=spec.since)
    if spec.until:
        rows = rows.filter(captured_at__lte=spec.until)
    if spec.text:
        rows = rows.filter(
            Q(exception_message__icontains=spec.text) | Q(message_id__icontains=spec.text)
        )
    if spec.group:
        rows = rows.filter(fingerprint=spec.group)
    if spec.poison:
        rows = rows.filter(poison=True)
    if spec.parked:
        rows = rows.filter(parked=True)
    return rows


def origin_label(row: dict[str, Any] | DeadLetter) -> str:
    """Where a letter (or a group) came from, in words."""

    def get(name: str) -> Any:
        return row.get(name) if isinstance(row, dict) else getattr(row, name)

    if get("origin_topic"):
        return f"topic {get('origin_topic')}"
    if get("origin_queue"):
        return f"queue {get('origin_queue')}"
    if get("origin_exchange") or get("origin_routing_key"):
        return f"exchange {get('origin_exchange') or '(default)'} / {get('origin_routing_key')}"
    return "unknown origin"


def origin_name(row: dict[str, Any] | DeadLetter) -> tuple[str, str]:
    """Where a letter (or a group) came from as (noun, name): the name is what the
    inbox's origin filter finds it by ("", "") when unknown."""

    def get(name: str) -> str:
        value = row.get(name) if isinstance(row, dict) else getattr(row, name)
        return str(value or "")

    if get("origin_topic"):
        return "topic", get("origin_topic")
    if get("origin_queue"):
        return "queue", get("origin_queue")
    if get("origin_exchange"):
        return "exchange", get("origin_exchange")
    if get("origin_routing_key"):
        return "key", get("origin_routing_key")
    return "", ""


# A group's letters by status: these columns add up to the group's count. ``failed_again``
# letters were requeued and came back: they count as requeued, and "came back" says how many.
GROUP_PARTS = ("pending", "scheduled", "requeuing", "requeued", "requeue_failed", "discarded")


def has_vhosts(kind: str) -> bool:
    """Whether the broker kind addresses queues by vhost (an unknown kind: no)."""
    try:
        return kind_named(kind).has_vhosts
    except ConfigError:
        return False


def get_inbox_groups(spec: InboxFilter, page: int = 1) -> Page[dict[str, Any]]:
    """One row per (cluster, fingerprint) with counts by status, first/last seen (failure
    times, capture times where unknown), how many came back and how many are poison.
    ``pending + scheduled + requeuing + requeued + requeue_failed + discarded == count``."""
    status = DeadLetter.Status
    groups = (
        filtered(spec)
        .values("cluster__slug", "fingerprint")
        .annotate(
            count=Count("id"),
            pending=Count("id", filter=Q(status=status.PENDING)),
            scheduled=Count("id", filter=Q(status=status.SCHEDULED)),
            requeuing=Count("id", filter=Q(status=status.REQUEUING)),
            requeued=Count("id", filter=Q(status__in=[status.REQUEUED, status.FAILED_AGAIN])),
            failed_again=Count("id", filter=Q(status=status.FAILED_AGAIN)),
            requeue_failed=Count("id", filter=Q(status=status.REQUEUE_FAILED)),
            discarded=Count("id", filter=Q(status=status.DISCARDED)),
            # What a group requeue would take (its confirmation counts these), up to last_id.
            claimable=Count("id", filter=Q(status__in=CLAIMABLE_STATUSES)),
            # Poison letters (the loop guard), and those of them a group requeue would take.
            # (Not named ``poison``: the field's name would then mean the aggregate.)
            poison_count=Count("id", filter=Q(poison=True)),
            poison_claimable=Count("id", filter=Q(poison=True, status__in=CLAIMABLE_STATUSES)),
            last_id=Max("id"),
            # When the letters failed (dead-lettered), or were captured where that is unknown.
            first_seen=Min(Coalesce("first_failed_at", "last_failed_at", "captured_at")),
            last_seen=Max(Coalesce("last_failed_at", "first_failed_at", "captured_at")),
            kind=Max("cluster__kind"),
            vhost=Max("vhost"),
            # Counted before ``dlq`` names the aggregate (the field's name is then taken).
            dlqs=Count("dlq", distinct=True),
            dlq=Max("dlq"),
            origin_exchange=Max("origin_exchange"),
            origin_routing_key=Max("origin_routing_key"),
            origin_queue=Max("origin_queue"),
            origin_topic=Max("origin_topic"),
            reason=Max("reason"),
            exception_class=Max("exception_class"),
            exception_message=Max("exception_message"),
        )
        .order_by("-last_seen", "fingerprint")
    )
    paginator: Paginator[dict[str, Any]] = Paginator(groups, PAGE_SIZE)
    result = paginator.get_page(page)
    for group in result.object_list:
        group["cluster"] = group.pop("cluster__slug")
        group["origin"] = origin_label(group)
        group["origin_noun"], group["origin_name"] = origin_name(group)
        # Letters of one group may name the class with or without its module: show the name.
        group["exception_name"] = class_name(group["exception_class"] or "")
        group["has_vhosts"] = has_vhosts(group.pop("kind") or "")
    result.object_list = list(result.object_list)
    return result


def get_inbox_rows(spec: InboxFilter, page: int = 1) -> Page[DeadLetter]:
    """Letters, newest first; each knows ``has_vhosts`` and ``origin_noun``/``origin_name``."""
    rows = filtered(spec).select_related("cluster").defer("body").order_by("-captured_at", "-id")
    result = Paginator(rows, PAGE_SIZE).get_page(page)
    letters = list(result.object_list)
    for letter in letters:
        letter.has_vhosts = has_vhosts(letter.cluster.kind)
        noun, name = origin_name(letter)
        letter.origin_noun, letter.origin_name = noun, name
        letter.exception_name = class_name(letter.exception_class or "")
        letter.short_id = short_id(letter.message_id or "")
    result.object_list = letters
    return result


def inbox_key(spec: InboxFilter, page: int, rows: bool) -> tuple[str, InboxFilter, int]:
    """What an inbox page is kept under (``letter_counts``): its groups or its rows."""
    return ("inbox.rows" if rows else "inbox.groups", spec, page)


def inbox_groups(
    spec: InboxFilter, page: int = 1, stamp: tuple[Any, ...] | None = None
) -> Page[dict[str, Any]]:
    """``get_inbox_groups``, reused while the letters are unchanged (read only)."""
    return letter_counts.reuse(
        inbox_key(spec, page, False), lambda: get_inbox_groups(spec, page), stamp
    )


def inbox_rows(
    spec: InboxFilter, page: int = 1, stamp: tuple[Any, ...] | None = None
) -> Page[DeadLetter]:
    """``get_inbox_rows``, reused while the letters are unchanged (read only)."""
    return letter_counts.reuse(
        inbox_key(spec, page, True), lambda: get_inbox_rows(spec, page), stamp
    )


def get_dead_letter(letter_id: int) -> DeadLetter:
    letter = DeadLetter.objects.select_related("cluster", "acted_by").filter(pk=letter_id).first()
    if letter is None:
        raise DeadLetter.DoesNotExist(f"no dead letter #{letter_id}")
    return letter


def get_dead_letter_body(letter_id: int) -> bytes:
    """The letter's whole body as captured (the page shows only the first part of a long one)."""
    letter = DeadLetter.objects.select_related("full_body").filter(pk=letter_id).first()
    if letter is None:
        raise DeadLetter.DoesNotExist(f"no dead letter #{letter_id}")
    full = getattr(letter, "full_body", None) if letter.body_truncated else None
    return bytes(full.data) if full is not None else bytes(letter.body)


def audit_target(letter_id: int) -> str:
    return f"deadletter:{letter_id}"


def get_dead_letter_detail(letter_id: int) -> dict[str, Any]:
    """The letter, its decoded body and headers, its failure timeline and its audit entries."""
    letter = get_dead_letter(letter_id)
    raw: Any
    if isinstance(letter.headers, dict):
        raw = from_json(letter.headers)
    else:
        raw = kafka_headers_from_json(letter.headers)
    props = letter.properties if isinstance(letter.properties, dict) else {}
    content_type = str(props.get("content_type") or "")
    encoding = str(props.get("content_encoding") or "")
    mine = Q(target=audit_target(letter.pk))
    if letter.claim_job is not None:
        # A bulk job writes its start and end (and revivals), not one entry per letter.
        job = letter.claim_job
        mine |= Q(target=f"job #{job}") | Q(target="deadletters", parameters__job=job)
    entries = list(AuditEntry.objects.filter(mine)) + _dispatcher_entries(letter)
    entries.sort(key=lambda entry: (entry.time, entry.pk))
    for entry in entries:
        entry.where = requeue_where(entry.parameters)  # type: ignore[attr-defined]
    deadletters = kind_named(letter.cluster.kind).deadletters
    keyed = deadletters is not None and deadletters.keyed
    # A null value (a tombstone) is shown as null, as the topic browser does, not as empty.
    value_null = keyed and props.get("value_null") is True
    body = decode_body(
        None if value_null else bytes(letter.body),
        content_type=content_type,
        content_encoding=encoding,
        headers=raw,
        limit=settings.MQB_DISPLAY_LIMIT,
    )
    x_death = decode_x_death(raw) if isinstance(raw, dict) else ()
    return {
        "letter": letter,
        "origin": origin_label(letter),
        "body": body,
        "body_cut": letter.body_truncated or body.truncated,
        "key": decode_body(bytes(letter.key) if letter.key is not None else None),
        "keyed": keyed,
        # The fields of the "requeue to this target" form: an exchange and key, or a topic.
        "target_fields": deadletters.target_fields if deadletters is not None else (),
        "history": _history(letter.failure_details),
        "headers": decode_headers(raw),
        "header_rows": header_rows(raw, x_death),
        "x_death": x_death,
        "timeline": _timeline(letter, entries),
        "audit": entries,
    }


DISPATCHER_SEND = "deadletters.schedule_send"  # the dispatcher's audit action (``dispatch``)
DISPATCHER_SCAN = 50  # the dispatcher's entries read after a letter's due time


def _dispatcher_entries(letter: DeadLetter) -> list[AuditEntry]:
    """The dispatcher's sends (and failed tries) that included this letter.

    The dispatcher writes one entry per batch per schedule or policy, targeting
    ``schedule #N`` / ``policy #N``, with every letter id of the batch in
    ``parameters["ids"]``; it sends a letter only once it is due, so its entries
    come after the letter's due time. The entry's detail is shown with the
    batch's counts (not saved).
    """
    targets = []
    if letter.schedule_id is not None:
        targets.append(f"schedule #{letter.schedule_id}")
    if letter.policy_id is not None:
        targets.append(f"policy #{letter.policy_id}")
    if not targets:
        return []
    since = letter.due_at or letter.captured_at
    found = []
    candidates = AuditEntry.objects.filter(
        action=DISPATCHER_SEND, target__in=targets, time__gte=since
    ).order_by("time", "pk")[:DISPATCHER_SCAN]
    for entry in candidates:
        params = entry.parameters if isinstance(entry.parameters, dict) else {}
        if letter.pk not in (params.get("ids") or ()):
            continue
        counts = f"{entry.target}: {params.get('sent', 0)} of {params.get('letters', 0)} sent"
        entry.detail = f"{counts} · {entry.detail}" if entry.detail else counts
        found.append(entry)
    return found


@dataclass(frozen=True)
class HeaderRow:
    """One row of a letter's header table: a time is shown as a time, x-death by its table."""

    key: str
    type_name: str
    display: str
    time: datetime | None = None
    see_x_death: int = 0


def _readable_leaf(value: object) -> str:
    """Header-table scalars as text, a time inside a table as "YYYY-MM-DD HH:MM:SS UTC"."""
    if isinstance(value, datetime):
        return utc_text(value)
    return display_leaf(value)


def header_rows(raw: Any, x_death: tuple[Any, ...], limit: int = 1024) -> list[HeaderRow]:
    """The letter's headers for its table, in order; times readable, x-death as a pointer."""
    values = header_pairs(raw)
    rows: list[HeaderRow] = []
    for index, row in enumerate(decode_headers(raw, limit=limit)):
        value = values[index][1] if index < len(values) else None
        if row.key.lower() == "x-death" and x_death and row.type_name == "array":
            rows.append(HeaderRow(row.key, row.type_name, "", see_x_death=len(x_death)))
        elif row.type_name == "timestamp" and isinstance(value, datetime):
            rows.append(HeaderRow(row.key, row.type_name, row.display, time=value))
        elif (
            row.as_int is not None
            and "timestamp" in row.key.lower()
            and isinstance(value, bytes | bytearray)
            and (moment := as_datetime(row.as_int)) is not None
        ):
            # A binary epoch (Spring's kafka_dlt-original-timestamp): the time, then the raw value.
            shown = f"{row.as_int} [0x{bytes(value).hex()}]"
            rows.append(HeaderRow(row.key, row.type_name, shown, time=moment))
        elif row.type_name in ("table", "array") and isinstance(value, dict | list | tuple):
            text, cut = render(value, limit, indent=None, leaf=_readable_leaf)
            rows.append(HeaderRow(row.key, row.type_name, text + "…" if cut else text))
        else:
            rows.append(HeaderRow(row.key, row.type_name, row.display))
    return rows


def requeue_where(parameters: Any) -> str:
    """Where an audited requeue sent a letter ("(default) / orders", "topic orders"), or ""."""
    if not isinstance(parameters, dict):
        return ""
    if parameters.get("topic"):
        return f"topic {parameters['topic']}"
    if "exchange" in parameters or "routing_key" in parameters:
        exchange = str(parameters.get("exchange") or "") or "(default)"
        return f"exchange {exchange} / {parameters.get('routing_key') or ''}"
    return ""


def _timeline(letter: DeadLetter, entries: list[AuditEntry]) -> list[tuple[datetime, str]]:
    """What happened to the letter, each event labelled by what happened then, oldest first."""
    events: list[tuple[datetime | None, str]] = [
        (letter.first_failed_at, "first failure"),
        (letter.last_failed_at, f"last failure (attempt {letter.attempts})"),
        (letter.captured_at, f"captured from {letter.dlq}"),
    ]
    own = audit_target(letter.pk)
    requeued_seen = False
    for entry in entries:
        if entry.target != own:
            continue
        who = entry.username or "system"
        where = requeue_where(entry.parameters)
        to = f" to {where}" if where else ""
        if entry.action.endswith(".requeue"):
            if entry.outcome == AuditEntry.Outcome.OK:
                requeued_seen = True
                events.append((entry.time, f"requeued by {who}{to}"))
            elif entry.outcome == AuditEntry.Outcome.FAILED:
                events.append((entry.time, f"requeue by {who}{to} failed: {entry.detail}"))
        elif entry.outcome == AuditEntry.Outcome.OK:
            events.append((entry.time, f"{label(entry.action.rsplit('.', 1)[-1])} by {who}"))
    if letter.acted_at:
        who = letter.acted_by.get_username() if letter.acted_by else "system"
        came_back = letter.status == DeadLetter.Status.FAILED_AGAIN
        if letter.status == DeadLetter.Status.REQUEUED or came_back:
            if not requeued_seen:
                if letter.claim_job is not None:
                    by = f" in job #{letter.claim_job}"
                elif letter.schedule_id is not None:
                    by = f" by schedule #{letter.schedule_id}"
                elif letter.policy_id is not None:
                    by = f" by policy #{letter.policy_id}"
                else:
                    by = ""
                events.append((letter.acted_at, f"requeued by {who}{by} to {origin_label(letter)}"))
        else:
            events.append((letter.acted_at, f"{letter.get_status_display()} by {who}"))
    if letter.failed_again_as_id is not None:
        again = DeadLetter.objects.filter(pk=letter.failed_again_as_id).values_list(
            "captured_at", flat=True
        )
        for when in again:
            events.append((when, f"came back as dead letter #{letter.failed_again_as_id}"))
    dated = [(when, what) for when, what in events if when is not None]
    return sorted(dated, key=lambda event: event[0])


def _history(details: Any) -> list[dict[str, Any]]:
    """The earlier failures a Kafka record's repeated headers tell of, newest first."""
    found = details.get("history") if isinstance(details, dict) else None
    return [h for h in found if isinstance(h, dict)] if isinstance(found, list) else []
