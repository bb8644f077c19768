"""The JSON API's plumbing: every ``/api/`` answer is JSON, errors as ``{"error", "code"}``.

The API is declared with django-ninja: each feature has a ``Router`` in its
``api`` module whose operations take and return typed schemas (``Out`` for
answers), and ``dashboard/openapi.py`` joins them in the one :func:`new_api`,
which generates ``/api/openapi.json`` and the docs page at ``/api/docs``.
:func:`new_api` turns what operations and services raise into the documented
errors: bad input (ninja's validation, :class:`~dashboard.core.params.InvalidParameter`
and its ``InvalidInput``, :func:`invalid` raised in a validator) is 400
``invalid``, a missing role (``PermissionDenied``) or a failed CSRF check 403,
and a :class:`Refusal` its own status and code (a user over their share, 429
with ``Retry-After``; a peek that needs confirming, 409). The login is checked
before any view by ``dashboard.core.login`` (401 ``unauthenticated``); roles
are checked by the services' ``do_*`` functions, which audit refusals; broker
errors become answers in ``dashboard.core.errors``. :func:`errors` declares an
operation's error answers and :func:`document_errors` adds 401 and 403 to all.

Django answers some requests before (or instead of) an API view: an unknown
route (404), a CSRF failure (403), a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``
(``RequestDataTooBig``, here 413), a method an operation does not take (405)
and a crash (500). Under ``/api/`` the handlers below answer those in JSON;
pages get them inside the site's layout (``templates/403.html``, ``404.html``,
``500.html``), with the reason when it is the dashboard's own text.
:class:`ApiErrorMiddleware` is the net under them: any other non-JSON error
answer under ``/api/`` (``DEBUG`` pages included) is replaced by the JSON one
for its status, keeping ``Allow``.

The shape is :class:`ErrorOut`. A 500 never carries the exception's text: it
is logged (``django.request``), not shown.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Annotated, Any, ClassVar

import orjson
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import Resolver404
from django.views import csrf, defaults
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyCookie
from ninja.utils import check_csrf
from pydantic import (
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dashboard.core.params import InvalidParameter

API_PREFIX = "/api/"

CODES = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "too_many_requests",
    500: "internal_error",
    502: "error",
    503: "unavailable",
    504: "timeout",
}


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error(message: str, code: str, status: int, /, **extra: Any) -> JsonResponse:
    """An error answer in the documented shape; ``extra`` fields follow the two."""
    return JsonResponse({"error": message, "code": code, **extra}, status=status)


# -- API views -------------------------------------------------------------------------


class Refusal(Exception):
    """A request refused with a status and code of its own; the message is for users."""

    status: ClassVar[int] = 409
    code: ClassVar[str] = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        return {}


def _refused(exc: InvalidParameter | PermissionDenied | Refusal) -> JsonResponse:
    if isinstance(exc, InvalidParameter):
        # An input error that knows its field (an edit's "body") names it, as validation does.
        field = getattr(exc, "field", None)
        return error(exc.message, "invalid", 400, field=field if isinstance(field, str) else None)
    if isinstance(exc, PermissionDenied):
        return error(str(exc) or "not allowed", "forbidden", 403)
    response = error(exc.message, exc.code, exc.status)
    for name, value in exc.headers().items():
        response[name] = value
    return response


def _generic(status: int, allow: str | None = None) -> JsonResponse:
    if status == 405 and allow:
        message = f"use {' or '.join(m.strip() for m in allow.split(','))}"
    else:
        try:
            message = HTTPStatus(status).phrase.lower()
        except ValueError:
            message = "error"
    response = error(message, CODES.get(status, "error"), status)
    if allow:
        response["Allow"] = allow
    return response


# -- handlers (dashboard/urls.py and CSRF_FAILURE_VIEW) ----------------------------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return error("the request body is too large", "too_large", 413)
    return error("bad request", "invalid", 400)


def _page(request: HttpRequest, template: str, status: int, message: str = "") -> HttpResponse:
    """An error page inside the layout (navigation, theme) for a page request."""
    return render(request, template, {"message": message}, status=status)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        # The dashboard's refusals name the role they need ("this needs the operator role").
        return _page(request, "403.html", 403, str(exception)[:300])
    return error(str(exception) or "not allowed", "forbidden", 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        # A Resolver404's text lists the URL patterns tried; a view's Http404 says what is missing.
        own = isinstance(exception, Http404) and not isinstance(exception, Resolver404)
        text = exception.args[0] if own and exception.args else ""
        return _page(request, "404.html", 404, text[:300] if isinstance(text, str) else "")
    if isinstance(exception, Resolver404) or not exception.args:
        # A Resolver404's text lists the URL patterns tried: not for clients.
        message = f"no such API endpoint: {request.path_info[:200]}"
    else:
        message = str(exception.args[0])
    return error(message, "not_found", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not is_api(request):
        try:
            return _page(request, "500.html", 500)
        except Exception:  # noqa: BLE001 - the layout itself failed: Django's plain page
            return defaults.server_error(request)
    return error("internal error: the dashboard's log has the details", "internal_error", 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if not is_api(request):
        return csrf.csrf_failure(request, reason)
    message = f"CSRF check failed ({reason}): send the csrftoken cookie's value in X-CSRFToken"
    return error(message, "csrf_failed", 403)


# -- the net -------------------------------------------------------------------------


class ApiErrorMiddleware:
    """Replaces a non-JSON error answer under /api/ by the JSON one for its status."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        response = self.get_response(request)
        # Static files and downloads are streaming answers, not HttpResponse.
        assert isinstance(response, HttpResponseBase)
        return self._finish(request, response)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        return self._finish(request, await response)

    def _finish(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code < 400 or not is_api(request):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return _generic(response.status_code, response.get("Allow"))


# -- the typed API (django-ninja) ------------------------------------------------------


class Out(Schema):
    """Base of every response schema: a key the code sends but the schema lacks is an error.

    django-ninja drops undeclared keys silently; forbidding them makes a test
    fail instead, so the generated document always describes every field sent.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(cls, values: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        # ninja's own root validator validates a schema that forbids extra keys twice
        # (as it is, then through its getter for Django objects) at every level of
        # nesting: a page of 100 Kafka records took 2.5 times as long. Answers here
        # are dicts and dataclasses, which pydantic reads as they are.
        return handler(values)


def built_answer(schema: type[Out], data: dict[str, Any]) -> HttpResponse:
    """``data``, already the exact JSON of ``schema``, sent without validating it.

    For the largest answers (a page of records), whose validation and dump by the
    operation's response schema cost as much as reading the page. The operation
    still declares ``schema`` (the document is generated from it); with
    ``MQB_API_CHECK_ANSWERS`` (on under the tests) ``data`` is validated and its
    JSON must be the JSON of the schema's own dump of it, so a key the schema does
    not describe, or a value it would send otherwise, fails the test that sent it.
    """
    if settings.MQB_API_CHECK_ANSWERS:
        dumped = schema.model_validate(data).model_dump(mode="json", by_alias=True)
        if _json(dumped, sort=True) != _json(data, sort=True):
            difference = _first_difference(data, dumped)
            raise AssertionError(f"answer differs from {schema.__name__}: {difference}")
    return HttpResponse(_json(data), content_type="application/json; charset=utf-8")


def _json(data: Any, *, sort: bool = False) -> bytes:
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS if sort else None)
    except TypeError:  # an int beyond 64 bits, a lone surrogate
        return json.dumps(data, sort_keys=sort).encode()


def _first_difference(sent: Any, dumped: Any, path: str = "") -> str:
    if isinstance(sent, dict) and isinstance(dumped, dict):
        for key in sorted(sent.keys() | dumped.keys()):
            a, b = sent.get(key, "(missing)"), dumped.get(key, "(missing)")
            if _json(a, sort=True) != _json(b, sort=True):
                return _first_difference(a, b, f"{path}.{key}")
    if isinstance(sent, list) and isinstance(dumped, list) and len(sent) == len(dumped):
        for i, (a, b) in enumerate(zip(sent, dumped, strict=True)):
            if _json(a, sort=True) != _json(b, sort=True):
                return _first_difference(a, b, f"{path}[{i}]")
    return f"{path or 'the answer'}: sent {sent!r:.200}, schema {dumped!r:.200}"


# Times travel as the ISO 8601 text the code makes (``datetime.isoformat()``),
# documented as date-time; pydantic would otherwise re-format them.
DateTimeText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class ErrorOut(Out):
    """Every error answer under /api/: what went wrong for users, and a stable code."""

    error: str = Field(description="what went wrong, for users")
    code: str = Field(
        description="stable machine-readable code",
        examples=["invalid", "unavailable", "auth_failed", "timeout", "not_found"],
    )
    field: str | None = Field(None, description="the input that was refused, when one was")


ERROR_TEXT = {
    400: "invalid input (code invalid, naming the field)",
    401: "not logged in",
    403: "the role is not enough, or the CSRF token is missing",
    404: "no such cluster, entity or job",
    409: "refused in this state: read-only cluster, not supported, needs confirming",
    413: "the request body is too large",
    429: "over the user's share; Retry-After says when to come back",
    502: "the broker refused or answered badly",
    503: "the broker (or the dashboard's job queue) is unavailable",
    504: "the broker did not answer in time",
}


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """The error answers of an operation, for ``response={200: X, **errors(...)}``.

    401 and 403 are added to every operation by the API itself (login and roles
    apply everywhere), so list only the others.
    """
    return {status: ErrorOut for status in statuses}


def document_errors(document: dict[str, Any]) -> None:
    """Every operation answers 401 and 403 (login and roles apply everywhere); error
    answers without a description of their own get the one in :data:`ERROR_TEXT`."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            present = {str(status) for status in responses}
            for status in (401, 403):
                if str(status) not in present:
                    responses[status] = {"description": "", "content": error}
            for status, answer in responses.items():
                code = int(status) if str(status).isdigit() else 0
                generic = (None, "", HTTPStatus(code).phrase if code else None)
                if code in ERROR_TEXT and answer.get("description") in generic:
                    answer["description"] = ERROR_TEXT[code]


def invalid(message: str) -> PydanticCustomError:
    """Raised in a schema's validator: a 400 ``invalid`` in the service's own words."""
    return PydanticCustomError("invalid", message)


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


# An integer query parameter that also takes an empty value, meaning its default:
# a blank field of an HTML form sends ``page=``. Documented as "an integer or empty".
QueryInt = Annotated[
    int | None,
    BeforeValidator(_blank_is_none),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"const": ""}]}),
]


class SessionAuth(APIKeyCookie):
    """Django's session cookie; unsafe methods also need the CSRF token.

    ``LoginRequiredMiddleware`` answers a request without a login (401) before
    any API code runs; this documents the cookie and checks CSRF, which Django's
    middleware leaves to django-ninja for its views. Async: it reads the user the
    middleware loaded, so the check itself needs no thread.
    """

    param_name = settings.SESSION_COOKIE_NAME

    async def __call__(self, request: HttpRequest) -> Any:
        """Async, so django-ninja awaits it in the event loop instead of a thread: the
        login middleware has already loaded the user, and the CSRF check reads no I/O."""
        return self.authenticate(request, self._get_key(request))

    def _get_key(self, request: HttpRequest) -> str | None:
        if self.csrf and check_csrf(request) is not None:
            raise CsrfFailed()
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return request.user if request.user.is_authenticated else None


class CsrfFailed(Exception):
    """A write without a valid CSRF token."""


# ninja types a handler's exception as "the class or an instance"; these take instances.


def _validation_field(location: tuple[object, ...]) -> str:
    # ("body", "payload", "rate_limit") -> "rate_limit"; ("query", "page") -> "page"
    names = [str(part) for part in location[1:] if not isinstance(part, int)]
    return names[-1] if names else str(location[-1] if location else "")


def _invalid(request: HttpRequest, exc: Any) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    field = _validation_field(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid input"))
    text = f"{field}: {message}" if field else message
    return error(text, "invalid", 400, field=field or None)


def _http_error(request: HttpRequest, exc: Any) -> HttpResponse:
    return error(exc.message, CODES.get(exc.status_code, "error"), exc.status_code)


def _csrf_failed(request: HttpRequest, exc: Any) -> HttpResponse:
    return csrf_failure(request, "token missing or incorrect")


def _not_found(request: HttpRequest, exc: Any) -> HttpResponse:
    return page_not_found(request, exc)


def _unauthenticated(request: HttpRequest, exc: Any) -> HttpResponse:
    return error("authentication required", "unauthenticated", 401)


def _refusal(request: HttpRequest, exc: Any) -> HttpResponse:
    return _refused(exc)


def new_api(api_class: type[NinjaAPI] = NinjaAPI, **options: Any) -> NinjaAPI:
    """A NinjaAPI that answers every error in the shape of :class:`ErrorOut`.

    Broker errors are left to ``dashboard.core.errors.BrokerErrorMiddleware``
    (one mapping of BrokerError to status for pages and API alike); anything
    unexpected to Django's 500 handler, which answers JSON under /api/.
    """
    api = api_class(auth=SessionAuth(), **options)
    api.add_exception_handler(ValidationError, _invalid)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(CsrfFailed, _csrf_failed)
    api.add_exception_handler(Http404, _not_found)
    api.add_exception_handler(AuthenticationError, _unauthenticated)
    for refused in (InvalidParameter, PermissionDenied, Refusal):
        api.add_exception_handler(refused, _refusal)
    return api
