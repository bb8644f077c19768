"""Writes happen once: idempotency keys for write forms, and results shown after a redirect.

A write form carries a one-time key in a hidden field (:data:`FIELD`, made by
:func:`new_key`, or ``{% idempotency_field %}`` from the ``once`` template tags).
The POST claims it (:func:`claim`) in the dashboard's Redis (``REDIS_URL``, the
Redis that carries Channels and Celery), so the claim holds across every web
process. A second POST with the same key and the same fields (a double click, a
resend) writes nothing: it waits for the first to settle (:func:`settle`) and is sent where the
first one went. A write that fails before writing anything releases its key
(:func:`release`), so the form may be sent again. :func:`redirect_once` does all
three around one write; :func:`writes_once` around a view that answers with a redirect.

A write's result is kept under a one-time token for the session that wrote it
(:func:`remember`) and read back by the page the POST redirects to (:func:`recall`),
so Back and Reload show the result again without writing. Results are JSON data,
never rendered HTML: small ones live in the session, large ones (a peek's messages)
in Redis, with their token remembered in the session, so only that session reads them.

When Redis is down, a claim falls back to the keys this session settled (a
resend after the first POST finished still writes once; two POSTs in flight at
the same moment may then both write), and a result goes to the session unless it
is too large even for that (:class:`NotKept`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import redis.asyncio
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseRedirectBase
from django.utils.http import url_has_allowed_host_and_scheme
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

FIELD: Final = "idempotency_key"
KEY_TTL: Final = 24 * 3600  # seconds a claimed key is remembered
RESULT_TTL: Final = 30 * 60  # seconds a result is shown again by default
WAIT: Final = 15.0  # seconds a repeated POST waits for the first one to settle
SESSION_BYTES: Final = 16 * 1024  # results larger than this (as JSON) are kept in Redis
SESSION_FALLBACK_BYTES: Final = 256 * 1024  # ... or in the session, up to this, when Redis is down
MAX_RESULTS: Final = 20  # results remembered per session
MAX_KEYS: Final = 50  # settled keys remembered per session (when Redis is down)
RESULTS_KEY: Final = "mqb.once.results"
KEYS_KEY: Final = "mqb.once.keys"
PENDING: Final = "\x00pending"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

AsyncView = Callable[..., Coroutine[Any, Any, HttpResponse]]


class NotKept(Exception):
    """A large result could not be kept (Redis refused it): show it now, it will not come back."""


def new_key() -> str:
    """A fresh idempotency key (for a form) or result token."""
    return secrets.token_urlsafe(18)


def posted_key(request: HttpRequest) -> str:
    """The key the form posted, or "" when it sent none (or a malformed one)."""
    key = str(request.POST.get(FIELD, ""))
    return key if _TOKEN.match(key) else ""


def _prefix() -> str:
    return f"{settings.MQB_CHANNEL_PREFIX}:once"


def _connect() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=2
    )


class Claims:
    """Claimed keys in Redis. Without ``client``, each call opens and closes a connection
    of its own (a client is bound to one event loop; views run on several)."""

    def __init__(self, client: redis.asyncio.Redis | None = None) -> None:
        self._client = client

    async def _run(self, call: Callable[[redis.asyncio.Redis], Awaitable[Any]]) -> Any:
        if self._client is not None:
            return await call(self._client)
        client = _connect()
        try:
            return await call(client)
        finally:
            await client.aclose()

    async def take(self, name: str) -> bool:
        """True for the first caller to claim ``name`` (SET NX), in whichever process."""
        return bool(await self._run(lambda c: c.set(name, PENDING, nx=True, ex=KEY_TTL)))

    async def value(self, name: str) -> str | None:
        found = await self._run(lambda c: c.get(name))
        return found.decode() if isinstance(found, bytes) else None

    async def settle(self, name: str, value: str) -> None:
        await self._run(lambda c: c.set(name, value, ex=KEY_TTL))

    async def release(self, name: str) -> None:
        await self._run(lambda c: c.delete(name))


async def _owner(request: HttpRequest) -> str:
    user = await request.auser()
    return str(getattr(user, "pk", None) or "")


def _fields(request: HttpRequest) -> str:
    """A digest of what the form posted: the same key with other fields (the form shown
    again by Back, then changed) is another write."""
    posted = sorted(
        (name, values)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", FIELD)
    )
    return hashlib.sha256(json.dumps(posted).encode()).hexdigest()[:32]


async def _claim_name(request: HttpRequest, kind: str, key: str) -> str:
    return f"{_prefix()}:claim:{kind}:{await _owner(request)}:{key}:{_fields(request)}"


async def claim(
    request: HttpRequest,
    kind: str,
    key: str,
    *,
    wait: float = WAIT,
    store: Claims | None = None,
) -> str | None:
    """Claim ``key`` for a write of ``kind``: None when this request may write; else what
    the request that claimed it first settled with (a URL or token), or "" when that one is
    still running after ``wait`` seconds. An empty ``key`` (a form without one) may write."""
    if not key:
        return None
    name = await _claim_name(request, kind, key)
    settled = (await request.session.aget(KEYS_KEY, {}) or {}).get(name)
    if settled:
        return str(settled)
    claims = store or Claims()
    try:
        if await claims.take(name):
            return None
        deadline = time.monotonic() + wait
        while True:
            seen = await claims.value(name)
            if seen is None:
                # The first attempt failed and released the key: this one may write.
                return None if await claims.take(name) else ""
            if seen != PENDING:
                return seen
            if time.monotonic() >= deadline:
                return ""
            await asyncio.sleep(0.1)
    except (RedisError, OSError) as exc:
        log.warning("idempotency key not claimed in Redis: %s", exc)
        return None


async def settle(
    request: HttpRequest, kind: str, key: str, value: str, *, store: Claims | None = None
) -> None:
    """Record that the write holding ``key`` went to ``value`` (a URL or result token)."""
    if not key:
        return
    name = await _claim_name(request, kind, key)
    keys = dict(await request.session.aget(KEYS_KEY, {}) or {})
    keys.pop(name, None)
    keys[name] = value
    await request.session.aset(KEYS_KEY, dict(list(keys.items())[-MAX_KEYS:]))
    # Saved before the claim settles: a repeated POST may be redirected to the result at once.
    await request.session.asave()
    try:
        await (store or Claims()).settle(name, value)
    except (RedisError, OSError) as exc:
        log.warning("idempotency key not settled in Redis: %s", exc)


async def release(
    request: HttpRequest, kind: str, key: str, *, store: Claims | None = None
) -> None:
    """The write holding ``key`` failed before writing: the form may be sent again."""
    if not key:
        return
    try:
        await (store or Claims()).release(await _claim_name(request, kind, key))
    except (RedisError, OSError) as exc:
        log.warning("idempotency key not released: %s", exc)


async def redirect_once(
    request: HttpRequest,
    kind: str,
    write: Callable[[], Awaitable[str]],
    *,
    busy: str,
    key: str | None = None,
    status: int = 302,
) -> HttpResponseRedirect:
    """Run ``write`` (it returns the URL that shows its outcome) unless the posted key was
    used already, then redirect there (``status``). A repeated POST goes where the first went, or
    to ``busy`` while the first is still running. A raising ``write`` releases the key."""
    key = posted_key(request) if key is None else key
    earlier = await claim(request, kind, key)
    if earlier is not None:
        return HttpResponseRedirect(earlier or busy, status=status)
    try:
        url = await write()
    except BaseException:
        await release(request, kind, key)
        raise
    await settle(request, kind, key, url)
    return HttpResponseRedirect(url, status=status)


class _NotRedirected(Exception):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__("answered without a redirect")
        self.response = response


def writes_once(kind: str) -> Callable[[AsyncView], AsyncView]:
    """For an async view that answers its POST with a redirect: a second POST of the same
    form (same key) runs nothing and is redirected where the first one was. An answer that
    is not a redirect (a form shown again with its errors) releases the key."""

    def decorate(view: AsyncView) -> AsyncView:
        @functools.wraps(view)
        async def once_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            async def write() -> str:
                response = await view(request, *args, **kwargs)
                if not isinstance(response, HttpResponseRedirectBase):
                    raise _NotRedirected(response)
                return str(response["Location"])

            try:
                return await redirect_once(request, kind, write, busy=_referrer(request))
            except _NotRedirected as answered:
                return answered.response

        return once_view

    return decorate


def _referrer(request: HttpRequest) -> str:
    """The page the form was on (this site's only), else the home page."""
    referrer = request.headers.get("Referer", "")
    if url_has_allowed_host_and_scheme(
        referrer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referrer
    return "/"


def _result_name(token: str) -> str:
    return f"{_prefix()}:result:{token}"


async def remember(
    request: HttpRequest, kind: str, scope: str, data: dict[str, Any], *, ttl: int = RESULT_TTL
) -> str:
    """Keep ``data`` (JSON-serialisable), the result of a write of ``kind`` on what ``scope``
    names, for this session for ``ttl`` seconds; the token that reads it back. Raises
    :class:`NotKept` when it is too large for the session and Redis refuses it."""
    token = new_key()
    now = time.time()
    entry: dict[str, Any] = {"kind": kind, "scope": scope, "until": now + ttl}
    text = json.dumps(data, separators=(",", ":"))
    if len(text) <= SESSION_BYTES:
        entry["data"] = data
    else:
        client = _connect()
        try:
            await client.set(_result_name(token), text, ex=ttl)
        except (RedisError, OSError) as exc:
            log.warning("result not kept in Redis: %s", exc)
            if len(text) > SESSION_FALLBACK_BYTES:
                raise NotKept(str(exc)) from exc
            entry["data"] = data
        finally:
            await client.aclose()
    results = dict(await request.session.aget(RESULTS_KEY, {}) or {})
    fresh = {t: e for t, e in results.items() if float(e.get("until", 0)) > now}
    fresh[token] = entry
    await request.session.aset(RESULTS_KEY, dict(list(fresh.items())[-MAX_RESULTS:]))
    return token


async def recall(
    request: HttpRequest, kind: str, scope: str, token: str | None
) -> dict[str, Any] | None:
    """The data :func:`remember` kept under ``token``, if this session kept it for ``kind``
    and ``scope`` and it has not expired."""
    if not token or not _TOKEN.match(token):
        return None
    entry = (await request.session.aget(RESULTS_KEY, {}) or {}).get(token)
    if not isinstance(entry, dict) or (entry.get("kind"), entry.get("scope")) != (kind, scope):
        return None
    if float(entry.get("until", 0)) <= time.time():
        return None
    if "data" in entry:
        data: dict[str, Any] = entry["data"]
        return data
    client = _connect()
    try:
        text = await client.get(_result_name(token))
    except (RedisError, OSError) as exc:
        log.warning("result not readable from Redis: %s", exc)
        return None
    finally:
        await client.aclose()
    if not isinstance(text, bytes):
        return None
    kept: dict[str, Any] = json.loads(text)
    return kept
