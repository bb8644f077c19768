"""Gzip for large answers: pages and JSON over ``MQB_GZIP_MIN_BYTES``, when the client asks.

Django's ``GZipMiddleware`` compresses every answer of 200 bytes or more,
streaming ones included. This one leaves alone what should not be touched:
streaming answers (downloads of message bytes, static files served by
WhiteNoise, anything read as it is produced), answers that already carry a
Content-Encoding, and those under the size, where compressing costs more than
it saves. It keeps Django's BREACH mitigation (a random-length file name in
the gzip header, Django >= 4.2) and its ETag weakening, and compresses with
``MQB_GZIP_LEVEL`` (1 is several times faster than zlib's 6 and still shrinks
JSON and HTML about fourfold). Websockets never pass through HTTP middleware.

It answers in the mode it is called (sync or async) without a thread hop.
"""

from __future__ import annotations

import gzip
import secrets
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.regex_helper import _lazy_re_compile

ACCEPTS_GZIP = _lazy_re_compile(r"\bgzip\b")
MAX_RANDOM_BYTES = 100  # as Django's GZipMiddleware


def gzip_bytes(data: bytes, level: int) -> bytes:
    """Gzip with a random-length file name in the header (hides the body's length: BREACH)."""
    compressed = memoryview(gzip.compress(data, compresslevel=level, mtime=0))
    header = bytearray(compressed[:10])
    header[3] = gzip.FNAME
    filename = b"a" * secrets.randbelow(MAX_RANDOM_BYTES) + b"\x00"
    return bytes(header) + filename + compressed[10:]


class GZipLargeMiddleware:
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
        assert isinstance(response, HttpResponseBase)
        return compress_response(request, response)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        return compress_response(request, await response)


def compress_response(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    if not isinstance(response, HttpResponse) or response.streaming:
        return response
    if len(response.content) < settings.MQB_GZIP_MIN_BYTES or response.has_header(
        "Content-Encoding"
    ):
        return response
    patch_vary_headers(response, ("Accept-Encoding",))
    if not ACCEPTS_GZIP.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
        return response
    compressed = gzip_bytes(response.content, settings.MQB_GZIP_LEVEL)
    if len(compressed) >= len(response.content):
        return response
    response.content = compressed
    response.headers["Content-Length"] = str(len(compressed))
    etag = response.get("ETag")
    if etag and etag.startswith('"'):
        response.headers["ETag"] = "W/" + etag
    response.headers["Content-Encoding"] = "gzip"
    return response
