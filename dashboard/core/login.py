"""Logging in: every view needs a login, and a locked-out login gets the site's own page.

:class:`LoginRequiredMiddleware` answers the JSON API with 401 in the
documented error shape instead of redirecting to the login page.
:func:`lockout_response` is what django-axes calls (``AXES_LOCKOUT_CALLABLE``)
instead of answering with its plain text.

:class:`CachedUserMiddleware` replaces Django's ``AuthenticationMiddleware``: the
logged-in user (and their role, for the page header) is read from the cache
(``CACHES``, Redis) instead of two database queries on every request. The
session hash is verified exactly as ``django.contrib.auth.get_user`` does, so a
password change or logout still ends other sessions. A cached user is dropped
whenever the user, their groups or a group is saved or deleted (signals, in
whichever process makes the change), and lives at most
``MQB_USER_CACHE_SECONDS`` in any case (a bulk ``QuerySet.update`` sends no
signal). Checks that guard writes (``require_role``) still read the database.

Under ASGI the middleware loads the session and the user before the view runs,
with two reads from Redis through ``redis.asyncio`` (the cache's own keys and
serializer, one client per event loop): no thread. A web process answers both
from its own memory when it read them before and nobody wrote them since
(``core.keymemo``: every write drops them in every process). Whatever is not in the cache
(a session or a user read from the database and put back), and a session hash
that does not match (the session is flushed or its key cycled), goes the sync
way in a thread. ``request.user`` is then the loaded user, so sync code after it
(``LoginRequiredMiddleware``, templates) touches no I/O.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

import redis
import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache, RedisSerializer
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

from dashboard.core import keymemo
from dashboard.core.api import error
from dashboard.core.cache import RedisCache as MemoRedisCache
from dashboard.core.keymemo import KeyMemo
from dashboard.core.middleware import InlineHooks
from dashboard.core.roles import role_of

ROLE_ATTRIBUTE = "_mqb_role"  # the role computed when the user was cached


def shown_role(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The role a page shows and offers actions for: the one computed when the user was
    cached (no groups query; dropped whenever the user or their groups change), else
    read. Actions check the role from the database again (``require_role``)."""
    if user.is_authenticated and hasattr(user, ROLE_ATTRIBUTE):
        role: str | None = getattr(user, ROLE_ATTRIBUTE)
        return role
    return role_of(user)


def role_is_kept(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether :func:`shown_role` answers without a query (a page may render in the
    event loop)."""
    return (
        not user.is_authenticated
        or getattr(user, "is_superuser", False)
        or hasattr(user, ROLE_ATTRIBUTE)
    )


def user_cache_key(user_id: object) -> str:
    return f"auth:user:{user_id}"


def _cached_backend_user(backend_path: str, user_id: object) -> AbstractBaseUser | None:
    """The backend's user (None: gone or inactive), from the cache when it is there."""
    key = user_cache_key(user_id)
    user: AbstractBaseUser | None = cache.get(key)
    if user is None:
        user = load_backend(backend_path).get_user(user_id)
        if user is None:
            return None
        setattr(user, ROLE_ATTRIBUTE, role_of(user))
        cache.set(key, user, settings.MQB_USER_CACHE_SECONDS)
    return user


def get_user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    """``django.contrib.auth.get_user`` with the user read through the cache."""
    user = None
    try:
        user_id = auth._get_user_session_key(request)  # type: ignore[attr-defined]
        backend_path = request.session[BACKEND_SESSION_KEY]
    except KeyError:
        pass
    else:
        if backend_path in settings.AUTHENTICATION_BACKENDS:
            user = _cached_backend_user(backend_path, user_id)
            if user is not None:
                session_hash = request.session.get(HASH_SESSION_KEY)
                current = user.get_session_auth_hash()
                if not (session_hash and constant_time_compare(session_hash, current)):
                    if session_hash and any(
                        constant_time_compare(session_hash, fallback)
                        for fallback in user.get_session_auth_fallback_hash()
                    ):
                        request.session.cycle_key()
                        request.session[HASH_SESSION_KEY] = current
                    else:
                        request.session.flush()
                        user = None
    return user or AnonymousUser()


def _request_user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    if not hasattr(request, "_cached_user"):
        request._cached_user = get_user(request)  # type: ignore[attr-defined]
    return request._cached_user  # type: ignore[attr-defined,no-any-return]


async def _request_auser(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    if not hasattr(request, "_acached_user"):
        request._acached_user = await sync_to_async(_request_user)(request)  # type: ignore[attr-defined]
    return request._acached_user  # type: ignore[attr-defined,no-any-return]


_MISSING = object()
_serializer = RedisSerializer()
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
    weakref.WeakKeyDictionary()
)


def _async_redis(alias: str) -> redis.asyncio.Redis | None:
    """This event loop's client to the Redis behind cache ``alias`` (None: not Redis)."""
    if not isinstance(caches[alias], RedisCache):
        return None
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        conf: dict[str, Any] = settings.CACHES[alias]
        location = conf["LOCATION"]
        url = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
        options: dict[str, Any] = conf.get("OPTIONS", {})
        client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=options.get("socket_timeout"),
            socket_connect_timeout=options.get("socket_connect_timeout"),
        )
        _clients[loop] = client
    return client


def _memo(alias: str, key: str) -> KeyMemo | None:
    """This process's memo for ``key`` of cache ``alias`` (None: off, or not such a key)."""
    backend = caches[alias]
    seconds = float(settings.MQB_AUTH_MEMO_SECONDS)
    if seconds <= 0 or not isinstance(backend, MemoRedisCache) or not keymemo.memoized(key):
        return None
    return keymemo.memo_for(backend.memo_location(), backend.key_prefix, seconds)


async def _acache_get(alias: str, key: str) -> Any:
    """``caches[alias].get(key)`` from the event loop; ``_MISSING`` when it is not there.

    Sessions and users come from this process's memo when it has them
    (``core.keymemo``); what is read from Redis is kept there, with its expiry."""
    client = _async_redis(alias)
    if client is None:
        return _MISSING
    made = caches[alias].make_and_validate_key(key)
    memo = _memo(alias, key)
    try:
        if memo is None:
            data = await client.get(made)
        else:
            data = memo.get(made)
            if data is not None:
                return _serializer.loads(data)
            generation = memo.generation
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(made)
                pipe.pttl(made)
                data, ttl_ms = await pipe.execute()
            if data is not None:
                memo.put(made, data, ttl_ms, generation)
    except redis.RedisError:
        return _MISSING  # the sync way answers as Django does (or fails the same)
    return _MISSING if data is None else _serializer.loads(data)  # type: ignore[arg-type]


async def _aload_session(session: SessionBase) -> bool:
    """Fill the session from the cache as ``cached_db`` would (False: not there)."""
    if hasattr(session, "_session_cache"):
        return True
    session.accessed = True
    if session.session_key is None:
        session._session_cache = {}  # type: ignore[attr-defined]
        return True
    cache_key = getattr(session, "cache_key", None)
    if cache_key is None:  # not a cached session engine
        return False
    data = await _acache_get(settings.SESSION_CACHE_ALIAS, cache_key)
    if data is _MISSING:
        return False
    session._session_cache = data  # type: ignore[attr-defined]
    return True


async def aget_user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser | None:
    """``get_user`` answered from Redis without a thread, or None: take the sync way."""
    session = request.session
    if not await _aload_session(session):
        return None
    if SESSION_KEY not in session or BACKEND_SESSION_KEY not in session:
        return AnonymousUser()
    backend_path = session[BACKEND_SESSION_KEY]
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user_id = auth._get_user_session_key(request)  # type: ignore[attr-defined]
    user = await _acache_get(DEFAULT_CACHE_ALIAS, user_cache_key(user_id))
    if user is _MISSING:
        return None
    session_hash = session.get(HASH_SESSION_KEY)
    if not (session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())):
        return None  # flushed or cycled: writes, in a thread
    return user  # type: ignore[no-any-return]


class CachedUserMiddleware(AuthenticationMiddleware):
    """``request.user`` and ``request.auser()``, read through the cache (see the module)."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)  # its checks (sessions installed)
        request.user = SimpleLazyObject(lambda: _request_user(request))  # type: ignore[assignment]
        request.auser = partial(_request_auser, request)  # type: ignore[assignment]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self.process_request(request)
        user = await aget_user(request)
        if user is None:
            user = await sync_to_async(_request_user)(request)
        request._cached_user = request._acached_user = user  # type: ignore[attr-defined]
        # Resolved already: the user itself, not a lazy object that forwards each of the
        # few dozen attribute reads a request makes.
        request.user = user  # type: ignore[assignment]
        response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        return response


def forget_user(user_id: object) -> None:
    cache.delete(user_cache_key(user_id))


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def _user_changed(sender: type[User], instance: User, **kwargs: object) -> None:
    forget_user(instance.pk)


@receiver(m2m_changed, sender=User.groups.through)
def _groups_changed(
    sender: type, instance: User | Group, action: str, pk_set: set[int] | None, **kwargs: object
) -> None:
    if not action.startswith("post_") and action != "pre_clear":
        return
    if isinstance(instance, User):
        forget_user(instance.pk)
    elif action == "pre_clear":
        members = instance.user_set.values_list("pk", flat=True)
        cache.delete_many([user_cache_key(pk) for pk in members])
    else:
        cache.delete_many([user_cache_key(pk) for pk in pk_set or ()])


@receiver(post_save, sender=Group)
@receiver(pre_delete, sender=Group)
def _group_changed(sender: type[Group], instance: Group, **kwargs: object) -> None:
    """A renamed or deleted group changes its members' roles (deleting sends no m2m signal)."""
    members = [user_cache_key(pk) for pk in instance.user_set.values_list("pk", flat=True)]
    cache.delete_many(members)


class LoginRequiredMiddleware(InlineHooks, DjangoLoginRequired):
    """Every view needs a login; the JSON API answers 401 instead of redirecting."""

    def handle_no_permission(  # type: ignore[override]
        self, request: HttpRequest, view_func: Callable[..., Any]
    ) -> HttpResponseRedirect | JsonResponse:
        if request.path.startswith("/api/"):
            return error("authentication required", "unauthenticated", 401)
        return super().handle_no_permission(request, view_func)


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """429 with the site's own page; the username comes from the refused form."""
    # axes passes (response, credentials) or only credentials depending on the
    # sync or async path; the form is what names the user either way.
    username = request.POST.get(str(getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")), "")
    cooloff = settings.AXES_COOLOFF_TIME
    context = {
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": round(cooloff.total_seconds() / 60) if cooloff else None,
    }
    return render(request, "registration/locked_out.html", context, status=429)
