from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.openapi import API
from dashboard.views import overview

# JSON under /api/, Django's pages elsewhere (dashboard.core.api).
handler400 = "dashboard.core.api.bad_request"
handler403 = "dashboard.core.api.permission_denied"
handler404 = "dashboard.core.api.page_not_found"
handler500 = "dashboard.core.api.server_error"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", API.urls),
    path("", include("dashboard.urls_rabbitmq")),
    path("", include("dashboard.urls_kafka")),
    path("", include("dashboard.urls_deadletters")),
    path("", include("dashboard.urls_jobs")),
    path("", include("dashboard.urls_metrics")),
    path("admin/", admin.site.urls),
]
