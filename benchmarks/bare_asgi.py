"""The floor of an HTTP answer: a trivial ASGI app (no Django) for Daphne to serve.

kafka_browse.py starts Daphne on it next to the dashboard and measures a
keep-alive round trip: what any page costs before Django does anything.
"""

from __future__ import annotations

from typing import Any


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})
