"""The dashboard: one Django project with one app of the same name."""

from dashboard.celery import app as celery_app

__all__ = ("celery_app",)
