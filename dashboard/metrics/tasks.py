"""Celery beat tasks of the metrics history: downsampling and retention.

Scheduled by ``CELERY_BEAT_SCHEDULE`` in settings (the "Live metrics" section):
downsampling every minute, retention every ten minutes. A Redis lock keeps
two overlapping runs (a slow run, or two beat processes) from computing the
same buckets twice.
"""

from __future__ import annotations

import logging

from dashboard.celery import app
from dashboard.metrics.downsample import apply_retention, downsample
from dashboard.metrics.redis_keys import key, sync_client

log = logging.getLogger(__name__)
LOCK_SECONDS = 600


def _locked(name: str) -> bool:
    """Take the run lock of ``name``; False when another run holds it."""
    return bool(sync_client().set(key("lock", name), "1", nx=True, ex=LOCK_SECONDS))


def _unlock(name: str) -> None:
    sync_client().delete(key("lock", name))


@app.task(name="dashboard.metrics.downsample", ignore_result=True)  # type: ignore[untyped-decorator]
def downsample_metrics() -> dict[str, int]:
    """Per-minute and per-hour rows from the tier below, for every cluster."""
    if not _locked("downsample"):
        log.info("downsampling is already running; skipped")
        return {}
    try:
        written = downsample()
    finally:
        _unlock("downsample")
    log.info("downsampled: %s", written)
    return written


@app.task(name="dashboard.metrics.retention", ignore_result=True)  # type: ignore[untyped-decorator]
def apply_metrics_retention() -> dict[str, int]:
    """Delete samples and consumers older than their settings allow."""
    if not _locked("retention"):
        return {}
    try:
        deleted = apply_retention()
    finally:
        _unlock("retention")
    log.info("retention deleted: %s", deleted)
    return deleted
