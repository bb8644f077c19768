"""The Celery app that runs the dashboard's own jobs (not the demo's tasks)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["dashboard"])
app.autodiscover_tasks(["dashboard"], related_name="tasks_metrics")
app.autodiscover_tasks(["dashboard"], related_name="tasks_deadletters")
