"""The RabbitMQ management HTTP API client of the adapter: one keep-alive client per adapter.

The client holds at most ``POOL_SIZE`` connections, all kept alive: concurrent
requests share them rather than open more.

Every failure becomes a BrokerError that says what happened: transport
errors, 401/403 (credentials, missing management tag), 404 (``NotFound``),
other statuses with the broker's reason. ``management_page`` also lets a
caller see the 3.10 "page past the end" answer (HTTP 400) for what it is.

Paths are built from names with ``values.quote_name``; as a last
guard, a path with a ``.`` or ``..`` segment (plain or percent-encoded) is
refused before it is sent, since both httpx and RabbitMQ would resolve it
against its parent and reach another endpoint with the dashboard's credentials.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx

from brokers.base import (
    BrokerAuthError,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    ClusterConfig,
    NotFound,
)
from brokers.base.validate import InvalidValue
from brokers.rabbitmq.errors import reason
from brokers.rabbitmq.values import DOT_SEGMENTS

USER_AGENT = "mqboard"
POOL_SIZE = 8
"""Keep-alive connections to the management API per adapter (one adapter per process and
cluster). More requests at once wait for a free connection instead of opening their own:
httpx's default keeps 20 alive but opens up to 100, closing each extra one after its
request, so a burst of page views would churn connections on the broker."""


class ManagementClient:
    """Base of the adapter: the management API half."""

    config: ClusterConfig
    _http: httpx.AsyncClient | None = None

    async def close_http(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    # -- management API ----------------------------------------------------

    async def management_get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET a management API path and return its JSON; errors become BrokerErrors."""
        return await self._management("GET", path, params=params)

    async def management_page(self, path: str, params: dict[str, str]) -> tuple[Any, str]:
        """GET one page of a paginated listing: ``(json, "")``, or ``(None, reason)`` when
        the page is past the end (HTTP 400 ``page_out_of_range`` in 3.10)."""
        response = await self._send("GET", path, params=params)
        if response.status_code == 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            if isinstance(body, dict) and body.get("error") == "page_out_of_range":
                return None, str(body.get("reason", ""))
        return self._json(response, "GET", path), ""

    async def management_put(self, path: str, body: Any) -> Any:
        return await self._management("PUT", path, json=body)

    async def management_delete(self, path: str) -> Any:
        return await self._management("DELETE", path)

    def _open_http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.config.management_url.rstrip("/"),
                auth=(self.config.username, self.config.password.reveal()),
                timeout=httpx.Timeout(self.config.timeout),
                headers={"User-Agent": USER_AGENT},
                verify=self.config.verify_tls,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            )
        return self._http

    async def _management(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._json(await self._send(method, path, **kwargs), method, path)

    def _where(self) -> str:
        return f"management API at {self.config.management_url}"

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; transport failures, 401, 403 and 404 become BrokerErrors."""
        if any(unquote(part) in DOT_SEGMENTS for part in path.partition("?")[0].split("/")):
            raise InvalidValue("name", f"{unquote(path)!r} holds a '.' or '..' path segment")
        client = self._open_http()
        where = self._where()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise BrokerTimeout(
                f"{where} did not answer within {self.config.timeout:g} s"
            ) from None
        except httpx.ConnectError as exc:
            raise BrokerUnavailable(f"{where} is unreachable: {reason(exc)}") from None
        except (httpx.RemoteProtocolError, httpx.DecodingError):
            raise BrokerError(
                f"{where} does not speak HTTP: is the port the management port (15672),"
                " not the AMQP one?",
                permanent=True,
            ) from None
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"{where} failed: {reason(exc)}") from None
        if response.status_code == 401:
            raise BrokerAuthError(
                f"{where} refused user {self.config.username!r}: wrong username or password"
            )
        if response.status_code == 403:
            raise BrokerAuthError(
                f"{where}: user {self.config.username!r} lacks the management tag for"
                f" {unquote(path)}"
            )
        if response.status_code == 404:
            raise NotFound(f"{where}: {unquote(path)} not found")
        return response

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        where = self._where()
        if response.status_code >= 400:
            raise BrokerError(
                f"{where} answered HTTP {response.status_code} for {method} {unquote(path)}: "
                f"{response.text[:200]}"
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BrokerError(
                f"{where} answered with something that is not JSON: is it really the"
                " RabbitMQ management plugin?",
                permanent=True,
            ) from None
