"""ASGI entry point: HTTP through Django, websockets through Channels.

Django is set up before the routing (and so the consumers, which import
models) is imported.
"""

from __future__ import annotations

import gc
import os

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

from dashboard.core.asgi_handler import LanedASGIHandler  # noqa: E402

# A request's sync work on a few long-lived threads, each keeping its database
# connection (core/asgi_handler.py); 0 threads: Django's thread per request.
django_asgi_app: ASGIHandler = (
    LanedASGIHandler(settings.MQB_WEB_SYNC_THREADS)
    if settings.MQB_WEB_SYNC_THREADS > 0
    else ASGIHandler()
)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from dashboard.core.websocket_origin import SameOriginValidator  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

# Move everything loaded at start-up out of the garbage collector's view: with
# 1,000 topics' metadata in memory, full collections paused requests for
# 50-140 ms every few requests; after freezing, about 2 ms.
gc.collect()
gc.freeze()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The Origin check (scheme, host and port, as Django's CSRF check)
        # refuses pages on other sites, or other ports, from using a logged-in
        # browser's cookies; the consumers check the session user.
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
