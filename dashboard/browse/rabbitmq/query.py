"""Turning query strings into queries: the HTML pages and the JSON API share these rules."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.conf import settings

from brokers.rabbitmq.models import (
    MAX_PAGE_SIZE,
    QUEUE_SORTS,
    QUEUE_STATES,
    QUEUE_TYPES,
    QueueQuery,
)
from dashboard.core.params import InvalidInput

PAGE_SIZES = (20, 50, 100, 200, 500)
TRUE = frozenset({"1", "true", "on", "yes"})


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE


def parse_int(value: str | None, default: int, *, name: str, low: int, high: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {value[:40]!r}") from None
    # Refused, not clamped: the management API itself answers 400 past page_size 500,
    # and the documented bounds are the ones the answer is computed with.
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}, not {number}")
    return number


def parse_queue_query(params: Mapping[str, str]) -> QueueQuery:
    sort = params.get("sort") or "name"
    if sort not in QUEUE_SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(QUEUE_SORTS)}")
    name = (params.get("name") or "")[:255]
    regex = truthy(params.get("regex"))
    if regex and name:
        try:
            re.compile(name)
        except re.error as exc:
            raise InvalidInput(
                f"the name filter is not a valid regular expression: {exc}"
            ) from None
    kind = params.get("type") or None
    if kind is not None and kind not in QUEUE_TYPES:
        raise InvalidInput(f"type must be one of {', '.join(QUEUE_TYPES)}")
    state = params.get("state") or None
    if state is not None and state not in QUEUE_STATES:
        raise InvalidInput(f"state must be one of {', '.join(QUEUE_STATES)}")
    dlx = (params.get("dlx") or "").lower()
    if dlx not in ("", "any", "yes", "no"):
        raise InvalidInput("dlx must be yes, no or any")
    return QueueQuery(
        vhost=params.get("vhost") or None,
        page=parse_int(params.get("page"), 1, name="page", low=1, high=1_000_000),
        page_size=parse_int(
            params.get("page_size"), 100, name="page_size", low=1, high=MAX_PAGE_SIZE
        ),
        sort=sort,
        reverse=truthy(params.get("reverse")),
        name=name,
        regex=regex,
        type=kind,
        state=state,
        has_dlx={"yes": True, "no": False}.get(dlx),
        stats=truthy(params.get("stats")),
        scan_limit=settings.MQB_RABBITMQ_SCAN_LIMIT,
    )


def query_string(query: QueueQuery, **changes: object) -> dict[str, str]:
    """The query-string parameters that reproduce ``query`` (with ``changes``)."""
    values: dict[str, object] = {
        "vhost": query.vhost or "",
        "page": query.page,
        "page_size": query.page_size,
        "sort": query.sort,
        "reverse": "1" if query.reverse else "",
        "name": query.name,
        "regex": "1" if query.regex else "",
        "type": query.type or "",
        "state": query.state or "",
        "dlx": {True: "yes", False: "no"}.get(query.has_dlx, ""),  # type: ignore[arg-type]
        "stats": "1" if query.stats else "",
    }
    values.update(changes)
    defaults = {"page": 1, "page_size": 100, "sort": "name"}
    return {
        key: str(value)
        for key, value in values.items()
        if value not in ("", None) and defaults.get(key) != value
    }
