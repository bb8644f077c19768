"""The JSON API: one NinjaAPI joining every feature's router.

django-ninja generates the OpenAPI 3.1 document at ``/api/openapi.json`` from
the operations' typed schemas, and serves an interactive docs page (Swagger
UI, from the dashboard's own static files) at ``/api/docs``. Both need a login,
like every page: the document answers 401 JSON like the rest of the API, while
the docs page, a page people follow a link to, sends them to the login page
and back. A test checks that every ``/api/`` route is in the document.

The docs page stays Swagger UI (its "Try it out" sends requests with the
session and CSRF token) rather than Redoc, whose styled-components inject
``<style>`` elements that the CSP (``style-src 'self'``) blocks. What makes it
pass axe is configuration plus one stylesheet: deep links off (with them every
operation's path is a link inside the operation's button, a nested control),
no ``servers`` in the document (Swagger UI shows them in an unlabelled select;
without the field clients use the document's own origin, which is the same
"/"), and ``static/css/apidocs.css`` for the colours (templates/ninja/swagger.html).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib.auth.decorators import login_not_required, login_required
from django.views.decorators.http import require_GET
from ninja import NinjaAPI, Swagger
from ninja.openapi.schema import OpenAPISchema
from ninja.openapi.views import openapi_view

from dashboard.alerts import api as alerts_api
from dashboard.alerts import channels_page as alerts_channels_api
from dashboard.auditlog import api as auditlog_api
from dashboard.browse.kafka import api as kafka_api
from dashboard.browse.rabbitmq import api as rabbitmq_api
from dashboard.core.api import document_errors, new_api
from dashboard.deadletters import api as deadletters_api
from dashboard.deadletters import api_policies as deadletters_policies_api
from dashboard.deadletters import api_preview as preview_api
from dashboard.deadletters import api_redirects as deadletters_redirects_api
from dashboard.deadletters import api_schedules
from dashboard.jobs import api as jobs_api
from dashboard.metrics import api as metrics_api
from dashboard.overview import api as overview_api
from dashboard.overview import api_check as overview_check_api


class DashboardAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        document_errors(schema)
        schema["paths"] = dict(sorted(schema["paths"].items()))
        return schema


def docs_views(view: Callable[..., Any]) -> Callable[..., Any]:
    """GET only (others: 405 with Allow); the docs page redirects to the login page.

    ninja decorates both the document's view and the docs page's with this; the
    document is left to ``LoginRequiredMiddleware`` (401 JSON).
    """
    if isinstance(view, partial) and view.func is openapi_view:
        return login_not_required(require_GET(login_required(view)))
    return require_GET(view)


API = new_api(
    DashboardAPI,
    title="mqboard API",
    version="1",
    description="JSON API of the RabbitMQ and Kafka dashboard. Session login required; "
    "writes need the operator or admin role and a CSRF token (X-CSRFToken).",
    urls_namespace="api",
    docs=Swagger(settings={"deepLinking": False}),
    docs_decorator=docs_views,
)
for router in (
    overview_api.router,
    overview_check_api.router,
    rabbitmq_api.router,
    kafka_api.router,
    deadletters_api.router,
    preview_api.router,
    deadletters_redirects_api.router,
    api_schedules.router,
    deadletters_policies_api.router,
    jobs_api.router,
    metrics_api.router,
    auditlog_api.router,
    alerts_api.router,
    alerts_channels_api.router,
):
    API.add_router("/", router)


def build_schema() -> dict[str, Any]:
    """The document served at /api/openapi.json."""
    return dict(API.get_openapi_schema())
