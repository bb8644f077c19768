from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.core import site
from dashboard.openapi import API
from dashboard.overview import views as overview

# JSON under /api/, pages in the site's layout elsewhere (dashboard.core.api).
handler400 = "dashboard.core.api.bad_request"
handler403 = "dashboard.core.api.permission_denied"
handler404 = "dashboard.core.api.page_not_found"
handler500 = "dashboard.core.api.server_error"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("health/<slug:slug>/check/", overview.check, name="cluster-check"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", site.LogoutView.as_view(), name="logout"),
    path("favicon.ico", site.favicon, name="favicon"),
    path("api/", API.urls),
    path("", include("dashboard.browse.rabbitmq.urls")),
    path("", include("dashboard.browse.kafka.urls")),
    path("", include("dashboard.deadletters.urls")),
    path("", include("dashboard.jobs.urls")),
    path("", include("dashboard.metrics.urls")),
    path("", include("dashboard.auditlog.urls")),
    path("", include("dashboard.alerts.urls")),
    path("admin/", admin.site.urls),
]
