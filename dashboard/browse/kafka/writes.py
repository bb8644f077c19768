"""Kafka writes: produce one record (operator), purge a topic or partition (admin)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from brokers.base import validate
from brokers.kafka import write as kafka_write
from brokers.kafka.errors import CompactedTopic
from brokers.kafka.models import Produced, PurgeResult
from dashboard.browse.kafka.access import (
    User,
    audited,
    authorize_write,
    check_topic,
    get_kafka,
    parse_int,
)
from dashboard.core.params import INT32_MAX, InvalidInput
from dashboard.core.params import parse_int as bounded_int
from dashboard.core.roles import ADMIN, OPERATOR

FORMATS = ("text", "json", "base64")
# The key of a record is never parsed as JSON (the document offers text and base64).
KEY_FORMATS = ("text", "base64")


@dataclass(frozen=True)
class RecordToProduce:
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    def as_audit(self) -> dict[str, Any]:
        key = None if self.key is None else self.key[:200].decode("utf-8", "replace")
        return {
            "partition": self.partition,
            "key": key,
            "value_size": None if self.value is None else len(self.value),
            "headers": [k for k, _ in self.headers],
        }


def encode(text: str | None, fmt: str, what: str) -> bytes | None:
    """``text`` as bytes in format ``fmt`` (text, json: validated, base64); an unknown
    ``fmt`` is refused even with no text (a null value with a bogus format is an error)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"{what} format must be one of {', '.join(FORMATS)}")
    if text is None:
        return None
    if fmt == "base64":
        try:
            return base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{what} is not valid base64") from None
    if fmt == "json":
        try:
            json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    return validate.utf8(text, what)  # a lone surrogate is a 400 naming the field


def parse_header_lines(text: str) -> tuple[tuple[str, bytes | None], ...]:
    """``name: value`` per line; a line without a colon is a header with a null value."""
    headers = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not name.strip():
            raise InvalidInput(f"header line {line[:40]!r} has no name")
        headers.append((name.strip(), validate.utf8(value.strip(), "headers") if colon else None))
    validate.kafka_headers(headers)  # NUL in a name: librdkafka would cut it there
    return tuple(headers)


def parse_produce_form(params: Any) -> RecordToProduce:
    """From the HTML form: an empty key is a null key; "null value" makes a tombstone."""
    key = str(params.get("key") or "")
    value = str(params.get("value") or "")
    value_null = str(params.get("value_null") or "") in ("on", "true", "1")
    value_format = str(params.get("value_format") or "text")
    return RecordToProduce(
        partition=parse_int(params, "partition", high=INT32_MAX),
        key=encode(key, str(params.get("key_format") or "text"), "key") if key else None,
        value=None if value_null else encode(value, value_format, "value"),
        headers=parse_header_lines(str(params.get("headers") or "")),
    )


def json_partition(value: Any) -> int | None:
    """A partition from a JSON body: null, or a whole number Kafka can have (32-bit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("partition must be a non-negative integer or null")
    return bounded_int(value, name="partition", low=0, high=INT32_MAX, error=InvalidInput)


def _json_format(data: dict[str, Any], field: str, allowed: tuple[str, ...]) -> str:
    """``key_format``/``value_format`` of a JSON body: missing or null is text; {} is not.

    Checked even when its key or value is null, so a wrong format is never
    accepted silently.
    """
    value = data.get(field)
    if value is None:
        return "text"
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}")
    return value


def parse_produce_json(data: Any) -> RecordToProduce:
    """From the API: ``key``/``value`` strings or null, ``*_format``, ``headers`` list."""
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    given = data.get("headers")
    if given is None:
        given = []
    if not isinstance(given, list):  # {} would otherwise pass as "no headers"
        raise InvalidInput("headers must be a list of [key, value] pairs or {key, value, format}")
    headers = []
    for i, item in enumerate(given):
        if isinstance(item, list | tuple) and len(item) == 2:
            name, value, fmt = item[0], item[1], "text"
        elif isinstance(item, dict):
            name, value, fmt = item.get("key"), item.get("value"), item.get("format", "text")
        else:
            raise InvalidInput("headers must be [key, value] pairs or {key, value, format}")
        if not isinstance(name, str) or not (value is None or isinstance(value, str)):
            raise InvalidInput("a header key must be a string and its value a string or null")
        headers.append((name, encode(value, str(fmt), f"headers[{i}].value")))
    validate.kafka_headers(headers)
    key, value = data.get("key"), data.get("value")
    if not (key is None or isinstance(key, str)) or not (value is None or isinstance(value, str)):
        raise InvalidInput("key and value must be strings or null")
    return RecordToProduce(
        partition=json_partition(data.get("partition")),
        key=encode(key, _json_format(data, "key_format", KEY_FORMATS), "key"),
        value=encode(value, _json_format(data, "value_format", FORMATS), "value"),
        headers=tuple(headers),
    )


async def do_produce(
    slug: str, topic: str, record: RecordToProduce, *, user: User, request: HttpRequest | None
) -> Produced:
    check_topic(topic)
    parameters = record.as_audit()
    target = f"topic:{topic}"
    await authorize_write(
        slug=slug,
        role=OPERATOR,
        action="kafka.produce",
        user=user,
        target=target,
        parameters=parameters,
        request=request,
    )
    async with audited(
        "kafka.produce",
        user=user,
        slug=slug,
        target=target,
        parameters=parameters,
        request=request,
    ) as entry:
        topics = await get_kafka(slug)
        produced = await topics.produce(
            topic,
            value=record.value,
            key=record.key,
            headers=list(record.headers),
            partition=record.partition,
        )
        entry.parameters.update(partition=produced.partition, offset=produced.offset)
    return produced


async def do_purge_topic(
    slug: str,
    topic: str,
    *,
    partition: int | None,
    confirm: str,
    user: User,
    request: HttpRequest | None,
) -> PurgeResult:
    """DeleteRecords to the high watermark; protected clusters need the typed topic name."""
    check_topic(topic)
    parameters: dict[str, Any] = {"partition": partition}
    target = f"topic:{topic}" if partition is None else f"topic:{topic}/{partition}"
    config = await authorize_write(
        slug=slug,
        role=ADMIN,
        action="kafka.purge",
        user=user,
        target=target,
        parameters=parameters,
        request=request,
    )
    if config.protected and confirm.strip() != topic:
        raise InvalidInput(
            f"cluster {config.display_name!r} is protected: type the topic name to confirm"
        )
    async with audited(
        "kafka.purge",
        user=user,
        slug=slug,
        target=target,
        parameters=parameters,
        request=request,
        refused=(CompactedTopic,),
    ) as entry:
        topics = await get_kafka(slug)
        try:
            result = await topics.purge(topic, partition=partition)
        except kafka_write.PartialPurge as exc:
            entry.parameters["offsets"] = _offsets(exc.result)
            raise
        entry.parameters.update(offsets=_offsets(result), deleted=result.deleted)
    return result


def _offsets(result: PurgeResult) -> list[dict[str, int | None]]:
    return [
        {
            "partition": p.partition,
            "low_before": p.low_before,
            "high_before": p.high_before,
            "low_after": p.low_after,
        }
        for p in result.partitions
    ]
