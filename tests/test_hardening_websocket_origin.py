"""The websocket Origin check compares scheme, host and port, as Django's CSRF check does.

Through the real ASGI application (``dashboard.asgi``) and the real Redis
channel layer, with a logged-in session: only the site the handshake was made
to (its ``Host`` and scheme, or the proxy's ``X-Forwarded-Proto`` when
``MQB_BEHIND_HTTPS_PROXY`` is on) or a ``CSRF_TRUSTED_ORIGINS`` entry may open
a websocket.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from dashboard.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def session_cookie(client: Any, user: Any) -> tuple[bytes, bytes]:
    client.force_login(user)
    value = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={value}".encode())


async def opens(
    cookie: tuple[bytes, bytes],
    *,
    host: str | None,
    origin: str | None,
    scheme: str = "ws",
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bool:
    headers = [cookie, *extra]
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/overview/", headers=headers)
    # Daphne puts the connection's scheme in the scope; the test communicator does not.
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=5)
    # A refused consumer still waits on the channel layer: end it either way,
    # or the event loop's teardown hangs on its pending receive.
    await communicator.disconnect()
    return bool(connected)


@pytest.fixture
async def cookie(client, viewer, redis_url) -> tuple[bytes, bytes]:
    return await asyncio.to_thread(session_cookie, client, viewer)


async def test_it_accepts_the_site_the_handshake_was_made_to(cookie):
    assert await opens(cookie, host="localhost", origin="http://localhost")
    assert await opens(cookie, host="127.0.0.1:8000", origin="http://127.0.0.1:8000")
    assert await opens(cookie, host="localhost:80", origin="http://localhost")
    assert await opens(cookie, host="localhost", origin="https://localhost", scheme="wss")


@pytest.mark.parametrize(
    ("host", "origin", "scheme"),
    [
        ("localhost", "http://localhost:31337", "ws"),  # another port on the same machine
        ("127.0.0.1:8000", "http://127.0.0.1:31337", "ws"),
        ("127.0.0.1", "https://127.0.0.1", "ws"),  # another scheme
        ("localhost", "http://localhost", "wss"),
        ("localhost", "http://127.0.0.1", "ws"),  # another host
        ("localhost", "http://evil.example", "ws"),
        ("evil.example", "http://evil.example", "ws"),  # DNS rebinding: not an allowed host
        ("localhost", "null", "ws"),
        ("localhost", "http://localhost/path", "ws"),
        ("localhost", "ftp://localhost", "ws"),
        ("localhost", "http://user@localhost", "ws"),
        ("localhost:99999", "http://localhost:99999", "ws"),
        ("localhost", None, "ws"),
        (None, "http://localhost", "ws"),
    ],
)
async def test_it_refuses_any_other_origin(cookie, host, origin, scheme):
    assert not await opens(cookie, host=host, origin=origin, scheme=scheme)


async def test_behind_an_https_proxy_the_forwarded_scheme_counts(cookie, settings):
    proto = ((b"x-forwarded-proto", b"https"),)
    # Without the setting the header is anyone's to send, and ignored.
    assert not await opens(cookie, host="localhost", origin="https://localhost", extra=proto)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["dash.example.com"]
    assert await opens(
        cookie, host="dash.example.com", origin="https://dash.example.com", extra=proto
    )
    assert not await opens(
        cookie, host="dash.example.com", origin="http://dash.example.com", extra=proto
    )
    plain = ((b"x-forwarded-proto", b"http"),)
    assert await opens(
        cookie, host="dash.example.com", origin="http://dash.example.com", extra=plain
    )


async def test_csrf_trusted_origins_are_accepted_too(cookie, settings):
    # A proxy that rewrites Host to the backend's address: the public origin is
    # trusted the same way it must be for form posts.
    settings.CSRF_TRUSTED_ORIGINS = ["https://dash.example.com", "https://*.example.org"]
    backend = "127.0.0.1:8000"
    assert await opens(cookie, host=backend, origin="https://dash.example.com")
    assert await opens(cookie, host=backend, origin="https://ops.example.org")
    assert not await opens(cookie, host=backend, origin="http://dash.example.com")
    assert not await opens(cookie, host=backend, origin="https://dash.example.com:8443")
    assert not await opens(cookie, host=backend, origin="https://example.com")
