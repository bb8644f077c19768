"""Bounded parsing of the numbers and times users send in queries, forms and JSON bodies.

``int()`` takes up to 4,300 digits (and Unicode digits such as ``²`` pass
``str.isdigit()`` but not ``int()``); librdkafka overflows past 32-bit
partitions and 64-bit offsets, SQLite past 64-bit ids, ``datetime`` past the
year 9999. So every number is checked for its characters, its length and its
range here, and a bad one is an :class:`InvalidParameter` (HTTP 400) whose
message names the parameter. :class:`InvalidInput`, a subclass, is what the
services raise for input a user can fix: pages catch it to show the message
beside the form, so a parser raises it when asked to (``error=InvalidInput``);
an :class:`InvalidParameter` no view caught becomes a 400 answer
(``dashboard.core.errors``, ``dashboard.core.api``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Page numbers past any real list (1,000,000 pages of 50 rows); the last page
# is shown for numbers past the end, as Django's paginator does.
PAGE_MAX = 1_000_000
# ASCII digits only, at most 19 significant ones (INT64_MAX has 19): anything
# longer is out of every range below without being converted.
_INTEGER = re.compile(r"[+-]?0*[0-9]{1,19}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 9999-12-31T23:59:59.999Z, the last moment a datetime holds.
EPOCH_MS_MAX = 253_402_300_799_999


class InvalidParameter(ValueError):
    """A parameter the user can fix (HTTP 400); the message says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(InvalidParameter):
    """Input a user can fix, raised by the services; the message says which and how."""


def parse_int(
    raw: object,
    *,
    name: str,
    low: int = -INT64_MAX - 1,
    high: int = INT64_MAX,
    error: type[InvalidParameter] = InvalidParameter,
) -> int:
    """A whole number in ``[low, high]`` from a string (or an int from JSON)."""
    if isinstance(raw, bool):
        raise error(f"{name} must be a whole number, not {raw!r}")
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        if not _INTEGER.fullmatch(text):
            digits = text.lstrip("+-")
            if not (digits.isascii() and digits.isdigit()):
                raise error(f"{name} must be a whole number, not {text[:40]!r}")
            # More than 19 digits: past every bound, no need to convert it.
            value = -INT64_MAX - 2 if text.startswith("-") else INT64_MAX + 1
        else:
            value = int(text)
    if value < low:
        raise error(f"{name} must be at least {low}")
    if value > high:
        raise error(f"{name} must be at most {high}")
    return value


def parse_page(raw: object, *, error: type[InvalidParameter] = InvalidParameter) -> int:
    """A ``page`` parameter: empty is 1 (blank is not a number: a 400)."""
    if raw is None or str(raw) == "":
        return 1
    return parse_int(raw, name="page", low=1, high=PAGE_MAX, error=error)


def parse_moment(
    raw: str, *, name: str, error: type[InvalidParameter] = InvalidParameter
) -> datetime:
    """An ISO 8601 date and time, in UTC; naive means the dashboard's time zone.

    In UTC because Python takes offsets up to 23:59 and PostgreSQL refuses those
    beyond 15:59 (``2024-05-01T12:00-19:37`` failed the query).
    """
    text = raw.strip()
    try:
        moment = parse_datetime(text)
    except ValueError:  # well formed, but no such day or time (2024-13-45)
        moment = None
    if moment is None:
        raise error(
            f"{name} must be an ISO 8601 date and time (2024-05-01T12:00:00), not {text[:40]!r}"
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise error(f"{name} is out of range: {text[:40]!r}") from None


def epoch_ms(moment: datetime, *, name: str, error: type[InvalidParameter]) -> int:
    """Milliseconds since 1970 (Kafka's record time): earlier times have none."""
    if moment < _EPOCH:
        raise error(f"{name} must not be before 1970-01-01")
    return int(moment.timestamp() * 1000)


# -- text no database or broker client takes --------------------------------------------


class InvalidText(InvalidParameter):
    """Text holding a character nothing downstream can take; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


def nul_parameters(query: QueryDict) -> list[str]:
    """Names of the parameters whose name or a value holds a NUL (U+0000)."""
    names: list[str] = []
    for name, values in query.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            names.append(name.replace("\x00", "\\0"))
    return names


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (PostgreSQL) or sent (UTF-8), or None when it can."""
    if "\x00" in text:
        return "must not hold a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid text (a lone surrogate at character {exc.start})"
    return None


def check_texts(values: Mapping[str, object], error: Callable[[str, str], Exception]) -> None:
    """Raise ``error(field, why)`` for the first text (or text in a list) nothing can store."""
    for field, value in values.items():
        texts = value if isinstance(value, list | tuple) else [value]
        for text in texts:
            problem = text_problem(text) if isinstance(text, str) else None
            if problem:
                raise error(field, problem)
