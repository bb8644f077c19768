"""URLs of the audit log page and its CSV export (included by dashboard/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.auditlog import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("audit/", views.audit_log, name="audit-log"),
    path("audit/export.csv", views.audit_log_csv, name="audit-log-csv"),
]
