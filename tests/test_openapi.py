"""The OpenAPI document is valid-looking and documents every /api/ route."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from dashboard.api.openapi import build_schema

pytestmark = pytest.mark.django_db


def _routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _as_openapi(route: str) -> str:
    # Django's "<str:slug>" becomes OpenAPI's "{slug}".
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).rstrip("$").lstrip("^")


def test_every_api_route_is_documented():
    documented = set(build_schema()["paths"])
    routes = {_as_openapi(r) for r in _routes(get_resolver().url_patterns)}
    api_routes = {r for r in routes if r.startswith("/api/")}
    assert api_routes, "no API routes found"
    assert api_routes <= documented, sorted(api_routes - documented)


def test_every_reference_resolves():
    schema = build_schema()
    text = repr(schema)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in schema["components"]["schemas"], name


def test_every_operation_has_an_id_and_responses():
    ids = []
    for path, item in build_schema()["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert op.get("responses"), (path, method)
                ids.append(op["operationId"])
    assert len(ids) == len(set(ids)), "duplicate operationId"


def test_it_is_served_to_logged_in_users(client, viewer):
    assert client.get("/api/openapi.json").status_code == 401
    client.force_login(viewer)
    assert client.get("/api/openapi.json").json()["openapi"] == "3.1.0"
