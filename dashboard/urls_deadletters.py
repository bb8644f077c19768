"""URLs of the deadletters pages and their JSON API (included by dashboard/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
