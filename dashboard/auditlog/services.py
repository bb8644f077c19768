"""Reading the audit trail: filters, keyset pages and CSV rows.

The trail only grows (100k rows is ordinary), so a page is a keyset range on
(time, id), newest first: ``time`` is indexed and ``id`` breaks ties, so page 500 costs what
page 1 costs, where an OFFSET would read and skip every row before it.

Limits: the ``from``/``to`` inputs are read as UTC unless they carry an offset (the page's
script sends the local time the user typed as UTC); the action
list is the distinct actions recorded so far.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache
from django.db.models import Q, QuerySet, Subquery

from dashboard.models import AuditEntry, Cluster

PAGE_SIZE = 50
CSV_COLUMNS = (
    "time", "user", "action", "cluster", "target", "outcome", "client_ip", "parameters", "detail",
)  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell starting with one of these as a formula (CSV injection)."""


class BadFilter(ValueError):
    """A filter or cursor that cannot be read; the page answers 400 with this message."""


@dataclass(frozen=True)
class AuditFilters:
    user: str = ""
    action: str = ""
    cluster: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def since_text(self) -> str:
        """``since`` as a datetime-local input's value, in UTC (the page shows it in local time)."""
        return _input_text(self.since)

    @property
    def until_text(self) -> str:
        return _input_text(self.until)

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for the next page and the CSV link)."""
        values = {
            "user": self.user,
            "action": self.action,
            "cluster": self.cluster,
            "outcome": self.outcome,
            "from": _input_text(self.since),
            "to": _input_text(self.until),
        }
        return {k: v for k, v in values.items() if v}


def _input_text(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _moment(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"{name}: not a date and time like 2026-12-06T14:30") from None
    if not moment.tzinfo:
        return moment.replace(tzinfo=UTC)
    try:
        # In UTC: PostgreSQL refuses offsets beyond 15:59, which Python takes.
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise BadFilter(f"{name}: out of range") from None


def parse_filters(params: Mapping[str, str]) -> AuditFilters:
    if any("\x00" in str(value) for value in params.values()):
        raise BadFilter("a filter holds a NUL character")
    outcome = params.get("outcome", "").strip()
    if outcome and outcome not in AuditEntry.Outcome.values:
        raise BadFilter(f"outcome: one of {', '.join(AuditEntry.Outcome.values)}")
    return AuditFilters(
        user=params.get("user", "").strip(),
        action=params.get("action", "").strip(),
        cluster=params.get("cluster", "").strip(),
        outcome=outcome,
        since=_moment(params.get("from", "").strip(), "from"),
        until=_moment(params.get("to", "").strip(), "to"),
    )


def filtered(filters: AuditFilters) -> QuerySet[AuditEntry]:
    """The matching entries, newest first."""
    rows = AuditEntry.objects.select_related("cluster")
    if filters.user:
        rows = rows.filter(username=filters.user)
    if filters.action:
        rows = rows.filter(action=filters.action)
    if filters.cluster:
        # The cluster's id first (one row), so the (cluster, time) index answers on
        # PostgreSQL too, where a join on the slug reads the whole trail by time.
        cluster_id = Cluster.objects.filter(slug=filters.cluster).order_by().values("id")[:1]
        rows = rows.filter(cluster_id=Subquery(cluster_id))
    if filters.outcome:
        rows = rows.filter(outcome=filters.outcome)
    if filters.since:
        rows = rows.filter(time__gte=filters.since)
    if filters.until:
        rows = rows.filter(time__lt=filters.until)
    return rows.order_by("-time", "-id")


def cursor_of(entry: AuditEntry) -> str:
    """Where the page after ``entry`` starts: its time (microseconds) and id."""
    micros = int(entry.time.timestamp() * 1_000_000)
    return f"{micros}-{entry.pk}"


def _after(cursor: str) -> Q:
    try:
        micros, pk = (int(part) for part in cursor.split("-"))
        moment = datetime.fromtimestamp(micros / 1_000_000, UTC)
    except (ValueError, OverflowError, OSError):
        raise BadFilter("before: not a cursor from this page") from None
    return Q(time__lt=moment) | Q(time=moment, id__lt=pk)


TARGET_LABELS = {"deadletters": "Dead-letter inbox"}
"""Targets that name a part of the dashboard rather than a broker object, by their label."""


def target_label(target: str) -> str:
    """A target as the page shows it: "deadletter:12" reads "Dead letter #12"."""
    if target in TARGET_LABELS:
        return TARGET_LABELS[target]
    kind, _, rest = target.partition(":")
    if kind == "deadletter" and rest.isdigit():
        return f"Dead letter #{rest}"
    return target


@dataclass(frozen=True)
class AuditRow:
    entry: AuditEntry
    parameters: str
    """The parameters as JSON text ("" when there are none)."""

    @property
    def target(self) -> str:
        return target_label(self.entry.target)


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    next_cursor: str | None
    first: bool


def get_audit_page(filters: AuditFilters, before: str = "") -> AuditPage:
    """One page of matching entries, newest first, after the ``before`` cursor."""
    rows = filtered(filters)
    if before:
        rows = rows.filter(_after(before))
    entries = list(rows[: PAGE_SIZE + 1])
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    rows_shown = [
        AuditRow(e, json.dumps(e.parameters, indent=1, sort_keys=True) if e.parameters else "")
        for e in entries
    ]
    return AuditPage(rows_shown, cursor_of(entries[-1]) if more else None, first=not before)


ACTIONS_CACHE_KEY = "auditlog:actions"
ACTIONS_CACHE_SECONDS = 60


def get_filter_choices() -> dict[str, list[str]]:
    """The actions recorded so far and the clusters, for the filter form.

    The distinct actions take a scan of the whole trail (tens of ms at 100k rows), so they
    are kept for a minute; an action first recorded since then joins the list after it.
    """
    actions = cache.get(ACTIONS_CACHE_KEY)
    if actions is None:
        rows = AuditEntry.objects.order_by("action").values_list("action", flat=True)
        actions = list(rows.distinct())
        cache.set(ACTIONS_CACHE_KEY, actions, ACTIONS_CACHE_SECONDS)
    clusters = Cluster.objects.order_by("slug").values_list("slug", flat=True)
    return {"actions": list(actions), "clusters": list(clusters)}


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(filters: AuditFilters) -> Iterator[list[str]]:
    """The header, then every matching entry (newest first), read in chunks."""
    yield list(CSV_COLUMNS)
    rows = filtered(filters).values_list(
        "time", "username", "action", "cluster__slug", "target", "outcome", "client_ip",
        "parameters", "detail",
    )  # fmt: skip
    for time, *rest, parameters, detail in rows.iterator(chunk_size=2000):
        cells = [time.astimezone(UTC).isoformat(), *rest, json.dumps(parameters), detail]
        yield [safe_cell(cell) for cell in cells]
