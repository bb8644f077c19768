"""Celery tasks: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="dashboard.ping")  # type: ignore[untyped-decorator]
def ping(value: str) -> str:
    """Round trip through the broker and a worker; health checks and tests use it."""
    return f"pong:{value}"
