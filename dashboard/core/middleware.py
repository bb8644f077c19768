"""The middleware chain, async end to end: a request crosses no thread under Daphne.

Under ASGI, Django runs each hook of a ``MiddlewareMixin`` middleware
(``process_request``, ``process_view``, ``process_response``) through
``sync_to_async``: a hop from the event loop to a thread and back, two or
three per middleware per request; and one sync-only middleware turns
everything outside it sync, with a hop into the chain and one back out to an
async view. Most of those hooks only read and write the request and the
response (headers, cookies, a nonce, the CSRF token): nothing that blocks. The
classes here are Django's (and WhiteNoise's) middleware with those hooks
called inline in async mode; sync mode (the test client, WSGI) is unchanged.

What still blocks runs in a thread, only when it happens: saving a modified
session (the database), serving a static file (opening it), finding one while
``WHITENOISE_AUTOREFRESH`` is on. Loading the session and the user is
``dashboard.core.login.CachedUserMiddleware``'s (from Redis, asynchronously).
Exceptions raised by a view still reach every ``process_exception`` (Django
calls those in a thread, only when there is one).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp.constants import HEADER as CSP_HEADER
from csp.constants import HEADER_REPORT_ONLY as CSP_HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrameOptions
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrfViewMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.utils.functional import SimpleLazyObject, empty
from whitenoise.middleware import WhiteNoiseMiddleware  # type: ignore[import-untyped]

GetResponse = Callable[[HttpRequest], Any]


class InlineHooks:
    """In async mode, calls the middleware's own hooks in the event loop, without a thread.

    Only for middleware whose hooks do no blocking I/O. ``process_view`` becomes a
    coroutine function on the instance, so the handler awaits it instead of running
    it in a thread.
    """

    async_mode: bool
    get_response: GetResponse

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)  # type: ignore[call-arg]
        sync_view = getattr(self, "process_view", None)
        if self.async_mode and sync_view is not None:

            async def process_view(
                request: HttpRequest,
                view_func: Callable[..., Any],
                view_args: tuple[Any, ...],
                view_kwargs: dict[str, Any],
            ) -> HttpResponseBase | None:
                response: HttpResponseBase | None = sync_view(
                    request, view_func, view_args, view_kwargs
                )
                return response

            setattr(self, "process_view", process_view)  # noqa: B010 (an instance attribute)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        assert isinstance(response, HttpResponseBase)
        return response


class SecurityMiddleware(InlineHooks, DjangoSecurityMiddleware):
    pass


# What a view may set to change its own policy (django-csp's decorators).
_CSP_PER_RESPONSE = tuple(
    f"_csp_{part}{suffix}"
    for part in ("config", "update", "replace", "exempt")
    for suffix in ("", "_ro")
)


@functools.cache
def _csp_headers() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """Each policy header the settings make (name, value, excluded path prefixes)."""
    made = []
    for header, setting, report_only in (
        (CSP_HEADER, "CONTENT_SECURITY_POLICY", False),
        (CSP_HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        value = build_policy(report_only=report_only)
        if value:
            excluded = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            made.append((header, value, tuple(excluded)))
    return tuple(made)


@receiver(setting_changed)
def _csp_settings_changed(setting: str, **kwargs: object) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _csp_headers.cache_clear()


class CSPMiddleware(InlineHooks, DjangoCSPMiddleware):
    """django-csp's policy headers, built once from the settings for every response
    that asks for nothing of its own (no nonce used, no per-view policy): building
    them was about a tenth of a logged-in request that does little else."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _CSP_PER_RESPONSE)
            or settings.DEBUG
        ):
            built: HttpResponseBase = super().process_response(request, response)
            return built
        for header, value, excluded in _csp_headers():
            if header not in response and not request.path_info.startswith(excluded):
                response[header] = value
        # As the library does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response


class CommonMiddleware(InlineHooks, DjangoCommonMiddleware):
    pass


class CsrfViewMiddleware(InlineHooks, DjangoCsrfViewMiddleware):
    """CSRF checks inline: the token comes from the cookie (``CSRF_USE_SESSIONS`` is off)."""


class MessageMiddleware(InlineHooks, DjangoMessageMiddleware):
    """Messages inline: their session storage reads the session the user middleware loaded.

    The storage is made when a message is added or read: a request that does
    neither (most) builds no cookie signer and stores nothing, as Django's
    ``update`` would not for a storage nobody used."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(partial(default_storage, request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:  # type: ignore[attr-defined]
            return response
        return super().process_response(request, response)


class XFrameOptionsMiddleware(InlineHooks, DjangoXFrameOptions):
    pass


def session_needs_saving(request: HttpRequest) -> bool:
    """Whether Django's ``SessionMiddleware.process_response`` will write the session."""
    session = getattr(request, "session", None)
    if session is None:
        return False
    modified = session.modified or settings.SESSION_SAVE_EVERY_REQUEST
    return bool(modified) and not session.is_empty()


class SessionMiddleware(InlineHooks, DjangoSessionMiddleware):
    """The session object inline; saving a modified one (a database write) in a thread."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self.process_request(request)
        response = await self.get_response(request)
        if session_needs_saving(request):
            saved: HttpResponseBase = await sync_to_async(self.process_response)(request, response)
            return saved
        return self.process_response(request, response)


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]
    """WhiteNoise, async-capable: a request for anything but a static file passes straight on."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)  # type: ignore[no-any-return]

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info
        if self.autorefresh:
            # find_file reads the disk (and the finders): only for paths under a static prefix.
            prefixes = [self.static_prefix, *(prefix for _root, prefix in self.directories)]
            if any(path.startswith(prefix) for prefix in prefixes):
                static_file = await sync_to_async(self.find_file)(path)
            else:
                static_file = None
        else:
            static_file = self.files.get(path)
        if static_file is not None:
            served: HttpResponseBase = await sync_to_async(self.serve)(static_file, request)
            return served
        response: HttpResponseBase = await self.get_response(request)
        return response
