"""Broker errors become user-facing answers here, and only here.

Views and API views let a ``BrokerError`` propagate; this middleware turns it
into a page or a JSON body with a status that says what happened. The message
is the adapter's, written for users; it never holds a secret. Input errors
(``dashboard.core.params.InvalidParameter``) a view did not catch become a 400.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
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
from dashboard.core.params import InvalidParameter

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
        return api_error(error.message, "invalid", 400)
    context = {"message": error.message, "code": "invalid", "status": 400}
    return render(request, "errors/broker.html", context, status=400)


class BrokerErrorMiddleware:
    """Only ``process_exception`` (Django calls it in either mode); passes requests straight on."""

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BrokerError):
            log.info("%s %s: %s", request.method, request.path, exception.message)
            return error_response(request, exception)
        if isinstance(exception, InvalidParameter):
            return invalid_response(request, exception)
        return None
