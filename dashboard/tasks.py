"""Celery tasks: thin wrappers over services.

Tasks are bound to the dashboard's own app, not ``shared_task``: a process
that also loads another Celery app (the demo's) would otherwise send them with
that app's configuration.
"""

from __future__ import annotations

from dashboard.celery import app


@app.task(name="dashboard.ping")  # type: ignore[untyped-decorator]
def ping(value: str) -> str:
    """Round trip through the broker and a worker; health checks and tests use it."""
    return f"pong:{value}"
