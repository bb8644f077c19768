"""Kafka results as JSON: result dataclasses, and records with their parts and download links.

A record's key, value and header values are sent once each: as text when the
bytes are UTF-8 (``encoding: "utf-8"``), as base64 only when they are not
(``encoding: "base64"``). A value over ``MQB_DISPLAY_LIMIT`` bytes is sent cut
to that many bytes (``truncated``), with a download link for all of them.
Binary parts also carry ``decoded``: the decoder's rendering (MessagePack,
Protobuf, hex) for display; a text part is its own rendering.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from dashboard.browse.kafka import Decoded, RecordView
from dashboard.core.encoding import encode_once

# Properties worth returning next to a result's fields.
EXTRA = {
    "TopicSummary": ("compacted",),
    "TopicPage": ("pages",),
    "PartitionInfo": ("messages", "under_replicated"),
    "TopicDetail": ("messages", "compacted", "compact_only"),
    "TopicReaders": ("complete",),
    "GroupSummary": ("has_commits",),
    "GroupPage": ("pages",),
    "GroupDetail": ("lag", "is_active"),
    "PurgedPartition": ("deleted",),
    "PurgeResult": ("deleted",),
}


def plain(value: Any) -> Any:
    """A result dataclass as JSON-ready data (datetimes ISO 8601, bytes base64)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in EXTRA.get(type(value).__name__, ()):
            data[name] = plain(getattr(value, name))
        return data
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _part(raw: bytes | None, decoded: Decoded, download: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    limit = settings.MQB_DISPLAY_LIMIT
    cut = len(raw) > limit
    encoding, data = encode_once(raw[:limit] if cut else raw, cut=cut)
    return {
        "format": decoded.format,
        "size": len(raw),
        "encoding": encoding,
        "data": data,
        "truncated": cut,
        "decoded": decoded.text if encoding == "base64" else None,
        "note": decoded.note,
        "download": download,
    }


def _header(key: str, raw: bytes | None, display: str, type_name: str) -> dict[str, Any]:
    if raw is None:
        return {"key": key, "encoding": None, "value": None, "decoded": None, "type": type_name}
    encoding, data = encode_once(raw)
    decoded = display if encoding == "base64" else None
    return {"key": key, "encoding": encoding, "value": data, "decoded": decoded, "type": type_name}


def record_json(slug: str, view: RecordView, downloads: str = "") -> dict[str, Any]:
    """One record as JSON; ``downloads`` (from :func:`download_base`) saves a reverse()."""
    r = view.record
    prefix = f"{downloads or download_base(slug, r.topic)}{r.partition}/{r.offset}/"
    return {
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp.isoformat() if r.timestamp else None,
        "timestamp_type": r.timestamp_type,
        "key": _part(r.key, view.key, prefix + "key"),
        "value": _part(r.value, view.value, prefix + "value"),
        "headers": [
            _header(key, raw, row.display, row.type_name)
            for (key, raw), row in zip(r.headers, view.headers, strict=False)
        ],
    }


def download_base(slug: str, topic: str) -> str:
    """``/clusters/<slug>/kafka/topics/<topic>/records/``: add ``<p>/<offset>/<part>``."""
    url = reverse("kafka-record-download", args=[slug, topic, 0, 0, "key"])
    return url.removesuffix("0/0/key")
