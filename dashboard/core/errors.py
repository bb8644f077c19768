"""Broker errors become user-facing answers here, and only here.

Views and API views let a ``BrokerError`` propagate; this middleware turns it
into a page or a JSON body with a status that says what happened. The message
is the adapter's, written for users; it never holds a secret. Input errors
(``dashboard.core.params.InvalidParameter``) a view did not catch become a 400.

A NUL (U+0000) in a query parameter is refused before any view, with a 400
naming the parameter: PostgreSQL's text cannot hold one and librdkafka cuts a
string at it. A NUL inside a JSON body may be a message's content, so it is
let through; one that reaches PostgreSQL anyway (a rule's name) is the
database's ``DataError``, a 400 here too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from brokers.base import (
    BrokerAuthError,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    ConfigError,
    NotFound,
    NotSupported,
)
from brokers.base.validate import InvalidValue
from dashboard.core.api import error as api_error
from dashboard.core.params import InvalidParameter, InvalidText, nul_parameters

log = logging.getLogger(__name__)

STATUS: list[tuple[type[BrokerError], int]] = [
    (InvalidValue, 400),  # a string no broker client can send; the message names the field
    (NotFound, 404),
    (NotSupported, 409),
    (ConfigError, 404),  # an unknown cluster slug is the common case
    (BrokerAuthError, 502),
    (BrokerTimeout, 504),
    (BrokerUnavailable, 503),
    (BrokerError, 502),
]


def status_for(error: BrokerError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 502


def error_response(request: HttpRequest, error: BrokerError) -> HttpResponse:
    status = status_for(error)
    if request.path.startswith("/api/"):
        if isinstance(error, InvalidValue):
            return api_error(error.message, error.code, status, field=error.field)
        return api_error(error.message, error.code, status)
    return render(
        request,
        "errors/broker.html",
        {"message": error.message, "code": error.code, "status": status},
        status=status,
    )


def invalid_response(request: HttpRequest, error: InvalidParameter) -> HttpResponse:
    """Input the user can fix that no view caught (a page number, a topic name): 400."""
    if request.path.startswith("/api/"):
        if isinstance(error, InvalidText):
            return api_error(error.message, "invalid", 400, field=error.field)
        return api_error(error.message, "invalid", 400)
    context = {"message": error.message, "code": "invalid", "status": 400}
    return render(request, "errors/broker.html", context, status=400)


def refused_text(request: HttpRequest) -> InvalidText | None:
    """What is wrong with a request's text before any view reads it, or None."""
    if "%00" in request.META.get("QUERY_STRING", ""):
        names = nul_parameters(request.GET)
        if names:
            return InvalidText(names[0], "a NUL character (U+0000) is not allowed here")
    return None


async def _answer(response: HttpResponse) -> HttpResponse:
    return response


class BrokerErrorMiddleware:
    """``process_exception`` (Django calls it in either mode), and the text checks above."""

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        refused = refused_text(request)
        if refused is None:
            return self.get_response(request)
        response = invalid_response(request, refused)
        return _answer(response) if iscoroutinefunction(self) else response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BrokerError):
            log.info("%s %s: %s", request.method, request.path, exception.message)
            return error_response(request, exception)
        if isinstance(exception, InvalidParameter):
            return invalid_response(request, exception)
        if isinstance(exception, DataError):
            # PostgreSQL refusing a value (SQLSTATE class 22, data exception): a NUL in
            # text a form or body sent, a number out of a column's range.
            log.warning(
                "%s %s: the database refused a value: %s", request.method, request.path, exception
            )
            return invalid_response(request, InvalidParameter(_data_error_text(exception)))
        return None


def _data_error_text(exception: DataError) -> str:
    if "NUL" in str(exception) or "0x00" in str(exception):
        return "text with a NUL character (U+0000) cannot be stored or searched"
    return "a value in this request cannot be stored or searched"
