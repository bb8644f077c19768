from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Message queue dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Page parts (core.recent) are known before a page renders in the event loop.
        from dashboard.alerts import badge  # noqa: F401

        # Signals that drop a cached user when it changes, in every process that may change one.
        from dashboard.core import login  # noqa: F401
        from dashboard.core.redis_cancel import install

        # Cancelled tasks end even when Python 3.11's wait_for drops the cancel inside redis-py.
        install()
