"""The request's CSRF token, masked once per request from one read of randomness.

Django's ``get_token`` masks the CSRF secret anew on every call (the BREACH defence: a
page never carries the secret itself) with 32 separate draws from the system's
randomness, each a ``getrandom`` call that lets go of the GIL. A page rendered in a
worker thread while the event loop serves other requests waits for the GIL again after
each of them: under fifty clients that was about an eighth of a page's time. Here the
mask comes from one read of random bytes, and a request keeps its masked token, so
every form of one page (and the rows an inbox page puts its token into) shares it. The
token has Django's format and is checked by Django's ``CsrfViewMiddleware`` as usual;
each response still gets a token of its own.

The ``csrf`` context processor (listed after Django's built-in one, so its
``csrf_token`` wins) hands templates this token, lazily as Django's does.
"""

from __future__ import annotations

import secrets

from django.http import HttpRequest
from django.middleware import csrf as django_csrf
from django.utils.functional import SimpleLazyObject

CHARS = django_csrf.CSRF_ALLOWED_CHARS
LENGTH = django_csrf.CSRF_SECRET_LENGTH
_INDEX = {c: i for i, c in enumerate(CHARS)}
_LIMIT = 256 - 256 % len(CHARS)
"""random bytes at or above this are dropped so that each character is equally likely"""
_KEPT = "mqb.csrf_token"


def random_string(length: int = LENGTH) -> str:
    """``length`` characters drawn uniformly from the CSRF alphabet, from one read of
    random bytes (more only in the rare case too many bytes were dropped)."""
    picked: list[str] = []
    while len(picked) < length:
        picked.extend(CHARS[b % len(CHARS)] for b in secrets.token_bytes(length + 16) if b < _LIMIT)
    return "".join(picked[:length])


def mask(secret: str) -> str:
    """The masked token of ``secret``, as Django's ``_mask_cipher_secret`` makes it."""
    key = random_string()
    n = len(CHARS)
    cipher = "".join(CHARS[(_INDEX[s] + _INDEX[k]) % n] for s, k in zip(secret, key, strict=True))
    return key + cipher


def get_token(request: HttpRequest) -> str:
    """``django.middleware.csrf.get_token``, masked once per request and secret."""
    secret = request.META.get("CSRF_COOKIE")
    if secret is None:
        token: str = django_csrf.get_token(request)  # a new secret and cookie, Django's way
        request.META[_KEPT] = (request.META["CSRF_COOKIE"], token)
        return token
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True  # as Django: renew the cookie's expiry
    kept = request.META.get(_KEPT)
    if kept is not None and kept[0] == secret:
        return str(kept[1])
    token = mask(secret)
    request.META[_KEPT] = (secret, token)
    return token


def csrf(request: HttpRequest) -> dict[str, object]:
    """Context processor: ``csrf_token`` from :func:`get_token`, made when first used."""
    return {"csrf_token": SimpleLazyObject(lambda: get_token(request))}
