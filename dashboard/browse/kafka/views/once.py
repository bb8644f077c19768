"""Writes happen once: post/redirect/get and idempotency keys for the Kafka write forms.

A write form carries a one-time ``idempotency_key`` (:func:`new_key`). The POST claims
it (:func:`claim`); a second POST with the same key (a double click, Back then resend)
writes nothing and is sent where the first one went. A successful write keeps its
result in the session under a one-time token (:func:`keep`) and redirects to a GET
that shows it (:func:`recall`), so Reload shows the result again without writing.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponseRedirect

# How long a result and a used key are remembered, and how many results a session keeps.
TTL = 30 * 60
KEEP = 20
SESSION_KEY = "kafka_write_results"
FIELD = "idempotency_key"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_PENDING = "pending"


def new_key() -> str:
    """A fresh key for a write form (or a result token)."""
    return secrets.token_urlsafe(16)


def _cache_key(request: HttpRequest, key: str) -> str:
    user = getattr(request, "user", None)
    return f"mqb:kafka-write:{getattr(user, 'pk', '') or ''}:{key}"


def form_key(request: HttpRequest) -> str:
    """The posted idempotency key, or "" when the form sent none (or a malformed one)."""
    key = str(request.POST.get(FIELD, ""))
    return key if _TOKEN.match(key) else ""


async def claim(request: HttpRequest, key: str, *, wait: float = 10.0) -> str | None:
    """None when this request may write; else where the earlier request with the same
    key went ("" when it failed or is still running after ``wait`` seconds)."""
    if not key:
        return None
    name = _cache_key(request, key)
    if await cache.aadd(name, _PENDING, TTL):
        return None
    deadline = time.monotonic() + wait
    while True:
        seen = await cache.aget(name)
        if seen is None:
            # The first attempt failed and released the key: this one may write.
            return None if await cache.aadd(name, _PENDING, TTL) else ""
        if seen != _PENDING or time.monotonic() > deadline:
            return "" if seen == _PENDING else str(seen)
        await asyncio.sleep(0.1)


async def settle(request: HttpRequest, key: str, url: str) -> None:
    """Remember where the write of ``key`` went, for a repeated POST."""
    if key:
        await cache.aset(_cache_key(request, key), url, TTL)


async def release(request: HttpRequest, key: str) -> None:
    """The write of ``key`` failed (nothing was written): the form may be sent again."""
    if key:
        await cache.adelete(_cache_key(request, key))


async def keep(request: HttpRequest, kind: str, scope: str, data: dict[str, Any]) -> str:
    """Store a write's result (of ``kind`` on the thing ``scope`` names) in the session;
    the token that shows it."""
    now = time.time()
    results = dict(await request.session.aget(SESSION_KEY, {}) or {})
    fresh = {t: r for t, r in results.items() if now - float(r.get("at", 0)) < TTL}
    token = new_key()
    fresh[token] = {"at": now, "kind": kind, "scope": scope, "data": data}
    newest = sorted(fresh.items(), key=lambda item: float(item[1]["at"]))[-KEEP:]
    await request.session.aset(SESSION_KEY, dict(newest))
    return token


async def recall(
    request: HttpRequest, kind: str, scope: str, token: str | None
) -> dict[str, Any] | None:
    """The result a token names, if it is this session's, of this kind and scope, and recent."""
    if not token or not _TOKEN.match(token):
        return None
    results = await request.session.aget(SESSION_KEY, {}) or {}
    entry = results.get(token)
    if not entry or (entry.get("kind"), entry.get("scope")) != (kind, scope):
        return None
    if time.time() - float(entry["at"]) >= TTL:
        return None
    data: dict[str, Any] = entry["data"]
    return data


async def redirect_once(
    request: HttpRequest, key: str, write: Callable[[], Awaitable[str]]
) -> HttpResponseRedirect:
    """Run ``write`` (which returns the URL showing its result) unless ``key`` was already
    used, then redirect there. A failed write releases the key and raises."""
    earlier = await claim(request, key)
    if earlier is not None:
        return HttpResponseRedirect(earlier or request.get_full_path())
    try:
        url = await write()
    except BaseException:
        await release(request, key)
        raise
    await settle(request, key, url)
    return HttpResponseRedirect(url)
