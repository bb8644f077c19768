"""The JSON API: one NinjaAPI joining every feature's router.

django-ninja generates the OpenAPI 3.1 document at ``/api/openapi.json`` from
the operations' typed schemas, and serves an interactive docs page (Swagger
UI, from the dashboard's own static files) at ``/api/docs``. Both need a login,
like every page. A test checks that every ``/api/`` route is in the document.

Areas not yet declared as routers are still described by their hand-written
``PATHS``/``SCHEMAS`` modules, merged into the generated document here.
"""

from __future__ import annotations

from typing import Any

from django.views.decorators.http import require_GET
from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from dashboard.api import deadletters_schema
from dashboard.api.kafka import schema as kafka_schema
from dashboard.api.openapi import legacy_document
from dashboard.api.rabbitmq import schema as rabbitmq_schema
from dashboard.core.api import new_api
from dashboard.jobs import api as jobs_api
from dashboard.metrics import api as metrics_api
from dashboard.overview import api as overview_api

LEGACY = (rabbitmq_schema, kafka_schema, deadletters_schema)


class DashboardAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        legacy = legacy_document(LEGACY)
        schema["paths"] = dict(sorted({**schema["paths"], **legacy["paths"]}.items()))
        schema.setdefault("components", {}).setdefault("schemas", {}).update(legacy["schemas"])
        return schema


API = new_api(
    DashboardAPI,
    title="mqboard API",
    version="1",
    description="JSON API of the RabbitMQ and Kafka dashboard. Session login required; "
    "writes need the operator or admin role and a CSRF token (X-CSRFToken).",
    urls_namespace="api",
    servers=[{"url": "/"}],
    # The document and the docs page answer GET only (others: 405 with Allow).
    docs_decorator=require_GET,
)
API.add_router("/", overview_api.router)
API.add_router("/", jobs_api.router)
API.add_router("/", metrics_api.router)


def build_schema() -> dict[str, Any]:
    """The document served at /api/openapi.json."""
    return dict(API.get_openapi_schema())
