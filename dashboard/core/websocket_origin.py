"""The websocket Origin check: the rule of Django's CSRF Origin check, for websockets.

A browser sends every websocket handshake with the cookies of the site it
connects to, whichever page opened it; the ``Origin`` header says which page.
A websocket is accepted only if its Origin is exactly (scheme, host, port) the
site the handshake was made to, or one of ``CSRF_TRUSTED_ORIGINS``:

* the host and port come from the ``Host`` header (``X-Forwarded-Host`` if
  ``USE_X_FORWARDED_HOST``), which must be in ``ALLOWED_HOSTS`` (so a page on
  another name that resolves to this server, DNS rebinding, is refused);
* the scheme is the connection's (``ws``/``wss`` in the ASGI scope), or, when
  ``SECURE_PROXY_SSL_HEADER`` is set (``MQB_BEHIND_HTTPS_PROXY``), the proxy's
  ``X-Forwarded-Proto``, read the way Django's ``request.is_secure()`` does;
* ports are compared with the scheme's default filled in
  (``http://host`` is ``http://host:80``);
* ``CSRF_TRUSTED_ORIGINS`` entries match exactly, or ``https://*.example.com``
  any subdomain, as for forms.

Channels' ``AllowedHostsOriginValidator`` compares only the Origin's host with
``ALLOWED_HOSTS``, so ``http://localhost:31337`` (another program on the same
machine) and ``https://127.0.0.1`` passed. A handshake without ``Host`` or
``Origin``, or with ``Origin: null``, is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    """The header's value; None if it is missing or repeated (ambiguous)."""
    values = [v for k, v in scope.get("headers", ()) if k.lower() == name]
    return values[0].decode("latin-1") if len(values) == 1 else None


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:  # as Django's HttpRequest.get_host()
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def _scheme(scope: Scope) -> str:
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        meta_name, secure_value = proxy
        header = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        value = _header(scope, header)
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def _address(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    parts: SplitResult = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def request_origin(scope: Scope) -> tuple[str, str, int] | None:
    """(scheme, host, port) the handshake was made to; None if its host is not allowed."""
    host = None
    if settings.USE_X_FORWARDED_HOST:
        host = _header(scope, b"x-forwarded-host")
    host = host or _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return _address(_scheme(scope), host)


def _trusted(parsed: SplitResult) -> bool:
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        pattern = urlsplit(trusted)
        if pattern.scheme != parsed.scheme:
            continue
        if "*" in pattern.netloc:
            if is_same_domain(parsed.netloc.lower(), pattern.netloc.lower().removeprefix("*")):
                return True
        elif _address(parsed.scheme, parsed.netloc) == _address(pattern.scheme, pattern.netloc):
            return True
    return False


def origin_allowed(scope: Scope) -> bool:
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return False
    parsed = urlsplit(origin.strip())
    if parsed.scheme not in DEFAULT_PORTS or parsed.path not in ("", "/"):
        return False
    own = request_origin(scope)
    if own is not None and _address(parsed.scheme, parsed.netloc) == own:
        return True
    return _trusted(parsed)


class SameOriginValidator:
    """ASGI middleware: a websocket whose Origin is not this site is closed unopened."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator only guards websocket connections")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
