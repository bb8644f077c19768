"""The OpenAPI document is valid-looking and documents every /api/ route."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from pydantic import BaseModel, ValidationError

from dashboard.core.api import Out, built_answer
from dashboard.openapi import API, build_schema

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


# The document itself, its docs page, and django-ninja's root (a 404 naming the docs).
NOT_OPERATIONS = {f"/api{API.openapi_url}", f"/api{API.docs_url}", "/api/"}


def test_every_api_route_is_documented():
    documented = set(build_schema()["paths"])
    routes = {_as_openapi(r) for r in _routes(get_resolver().url_patterns)}
    api_routes = {r for r in routes if r.startswith("/api/")} - NOT_OPERATIONS
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


def test_the_docs_page_is_served_to_logged_in_users(client, viewer):
    # A page people follow a link to: the login page, then back; the API itself answers 401.
    anonymous = client.get("/api/docs")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/login/?next=/api/docs"
    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/api/clusters/health").status_code == 401
    client.force_login(viewer)
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"swagger-ui-bundle.js" in page.content
    assert b"/api/openapi.json" in page.content


def _models(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _models(sub)


def test_no_two_schemas_share_a_name():
    # The document names components by class name: a second class of the same name
    # silently takes the first one's place (a RabbitMQ purge was documented with the
    # Kafka purge's body).
    build_schema()
    ours = {m for m in _models(BaseModel) if m.__module__.startswith("dashboard.")}
    names = Counter(m.__name__ for m in ours)
    assert [name for name, count in names.items() if count > 1] == []


class _PairOut(Out):
    name: str
    size: int | None


class _PageOut(Out):
    items: list[_PairOut]


def test_an_answer_sent_as_built_is_checked_against_its_schema_under_the_tests(settings):
    """``built_answer`` skips validation in production; the tests validate every such answer."""
    assert settings.MQB_API_CHECK_ANSWERS
    good = {"items": [{"name": "a", "size": 1}, {"name": "ü", "size": None}]}
    response = built_answer(_PageOut, good)
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.content) == good
    extra = {"items": [{"name": "a", "size": 1, "secret": "x"}]}
    with pytest.raises(ValidationError, match="secret"):
        built_answer(_PageOut, extra)
    # Valid but not what the schema sends (pydantic would coerce "1" to 1).
    coerced = {"items": [{"name": "a", "size": True}]}
    with pytest.raises(AssertionError, match=r"\.items\[0\]\.size: sent True, schema 1"):
        built_answer(_PageOut, coerced)


def test_an_answer_sent_as_built_is_not_validated_in_production(settings):
    settings.MQB_API_CHECK_ANSWERS = False
    extra = {"items": [{"name": "a", "size": 1, "secret": "x"}]}
    assert json.loads(built_answer(_PageOut, extra).content) == extra
    # Beyond what orjson writes (ints over 64 bits, lone surrogates): the json module's text.
    huge = {"items": [{"name": "a", "size": 1 << 70}]}
    assert json.loads(built_answer(_PageOut, huge).content) == huge
    lone = {"items": [{"name": "\ud800", "size": 1}]}
    assert json.loads(built_answer(_PageOut, lone).content) == lone
