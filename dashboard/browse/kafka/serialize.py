"""Kafka results as JSON: result dataclasses, and records with their parts and download links."""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from dashboard.browse.kafka import Decoded, RecordView

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
    whole = len(raw) <= settings.MQB_DISPLAY_LIMIT
    return {
        "format": decoded.format,
        "size": decoded.size,
        "text": decoded.text,
        "truncated": decoded.truncated,
        "note": decoded.note,
        "base64": base64.b64encode(raw).decode("ascii") if whole else None,
        "download": download,
    }


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
            {
                "key": key,
                "base64": None if raw is None else base64.b64encode(raw).decode("ascii"),
                "display": row.display,
                "type": row.type_name,
            }
            for (key, raw), row in zip(r.headers, view.headers, strict=False)
        ],
    }


def download_base(slug: str, topic: str) -> str:
    """``/clusters/<slug>/kafka/topics/<topic>/records/``: add ``<p>/<offset>/<part>``."""
    url = reverse("kafka-record-download", args=[slug, topic, 0, 0, "key"])
    return url.removesuffix("0/0/key")
