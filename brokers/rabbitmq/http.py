"""The RabbitMQ management HTTP API client of the adapter: one keep-alive client per adapter.

The client holds at most ``POOL_SIZE`` connections, all kept alive: concurrent
requests share them rather than open more.

Failover: a cluster may list several management URLs (``config.management_urls``,
one per node, all answering for the whole cluster). Requests go to one node;
when it refuses or times out, the request is tried on the next node, which
then takes every request that follows (until it fails in turn). A request that
may already have reached a node moves on only if repeating it is harmless.

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

import logging
from collections.abc import Sequence
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

log = logging.getLogger(__name__)

USER_AGENT = "mqboard"
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
"""Methods a request may be repeated with on another node after it may have been sent."""
POOL_SIZE = 8
"""Keep-alive connections to the management API per adapter (one adapter per process and
cluster). More requests at once wait for a free connection instead of opening their own:
httpx's default keeps 20 alive but opens up to 100, closing each extra one after its
request, so a burst of page views would churn connections on the broker."""


class ManagementClient:
    """Base of the adapter: the management API half."""

    config: ClusterConfig
    _http: httpx.AsyncClient | None = None
    """the client of the node in use (``_node``)"""
    _node: int = 0
    """index into ``config.management_urls`` of the node requests go to first"""
    _spare_http: dict[int, httpx.AsyncClient] | None = None
    """the clients of nodes used before, kept open for requests still running on them"""
    _prometheus_http: httpx.AsyncClient | None = None
    """the client of ``config.prometheus_urls`` (every node: the URLs are absolute)"""

    async def close_http(self) -> None:
        http, self._http = self._http, None
        spares, self._spare_http = self._spare_http or {}, None
        prometheus, self._prometheus_http = self._prometheus_http, None
        for client in (http, *spares.values(), prometheus):
            if client is not None:
                await client.aclose()

    async def prometheus_get(self, url: str, params: Sequence[tuple[str, str]]) -> str:
        """GET ``url`` (a node's Prometheus endpoint, not authenticated) and return its text.

        No failover: each node reports its own objects, so each URL is asked."""
        if self._prometheus_http is None:
            self._prometheus_http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.config.timeout),
                headers={"User-Agent": USER_AGENT},
                verify=self.config.verify_tls,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            )
        where = f"Prometheus endpoint at {url}"
        try:
            response = await self._prometheus_http.get(url, params=tuple(params))
        except httpx.TimeoutException:
            raise BrokerTimeout(
                f"{where} did not answer within {self.config.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"{where} is unreachable: {reason(exc)}") from None
        if response.status_code != 200:
            raise BrokerError(
                f"{where} answered HTTP {response.status_code}: is rabbitmq_prometheus enabled?"
            )
        return response.text

    # -- management API ----------------------------------------------------

    async def management_get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET a management API path and return its JSON; errors become BrokerErrors."""
        return await self._management("GET", path, params=params)

    async def management_page(self, path: str, params: dict[str, str]) -> tuple[Any, str]:
        """GET one page of a paginated listing: ``(json, "")``, or ``(None, reason)`` when
        the page is past the end (HTTP 400 ``page_out_of_range`` in 3.10)."""
        response, where = await self._send("GET", path, params=params)
        if response.status_code == 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            if isinstance(body, dict) and body.get("error") == "page_out_of_range":
                return None, str(body.get("reason", ""))
        return self._json(response, "GET", path, where), ""

    async def management_put(self, path: str, body: Any) -> Any:
        return await self._management("PUT", path, json=body)

    async def management_delete(self, path: str) -> Any:
        return await self._management("DELETE", path)

    def _open_http(self) -> httpx.AsyncClient:
        """The client of the node in use, opened on first use."""
        if self._http is None:
            self._http = self._client_for(self._node)
        return self._http

    def _client_for(self, node: int) -> httpx.AsyncClient:
        spare = (self._spare_http or {}).pop(node, None)
        if spare is not None:
            return spare
        return httpx.AsyncClient(
            base_url=self._node_url(node).rstrip("/"),
            auth=(self.config.username, self.config.password.reveal()),
            timeout=httpx.Timeout(self.config.timeout),
            headers={"User-Agent": USER_AGENT},
            verify=self.config.verify_tls,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        )

    def _node_url(self, node: int) -> str:
        urls = self.config.management_urls
        return urls[node] if urls else ""

    def _switch_to(self, node: int) -> None:
        """Send requests to ``node`` first from now on; the old client stays open (other
        requests may still be running on it) and is reused if its node comes first again."""
        if node == self._node:
            return
        if self._http is not None:
            if self._spare_http is None:
                self._spare_http = {}
            self._spare_http[self._node] = self._http
        self._node = node
        self._http = self._client_for(node)

    async def _management(self, method: str, path: str, **kwargs: Any) -> Any:
        response, where = await self._send(method, path, **kwargs)
        return self._json(response, method, path, where)

    def _where(self, node: int | None = None) -> str:
        return f"management API at {self._node_url(self._node if node is None else node)}"

    async def _send(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, str]:
        """One request and the node that answered it (for messages): on the node in use,
        then, when that node is unreachable or times out, on each other node in turn.

        A request that may have reached a node is tried again elsewhere only when
        repeating it is harmless (GET, PUT, DELETE): a POST moves on only when the
        connection itself failed. Transport failures, 401, 403 and 404 become BrokerErrors.
        """
        if any(unquote(part) in DOT_SEGMENTS for part in path.partition("?")[0].split("/")):
            raise InvalidValue("name", f"{unquote(path)!r} holds a '.' or '..' path segment")
        count = max(1, len(self.config.management_urls))
        first = self._node
        failure: BrokerError | None = None
        for step in range(count):
            node = (first + step) % count
            if node != self._node:
                self._switch_to(node)
            client = self._open_http()
            where = self._where(node)
            try:
                response = await client.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                failure = BrokerTimeout(f"{where} did not answer within {self.config.timeout:g} s")
                if not (isinstance(exc, httpx.ConnectTimeout) or method in IDEMPOTENT):
                    raise failure from None
            except httpx.ConnectError as exc:
                failure = BrokerUnavailable(f"{where} is unreachable: {reason(exc)}")
            except (httpx.RemoteProtocolError, httpx.DecodingError):
                raise BrokerError(
                    f"{where} does not speak HTTP: is the port the management port (15672),"
                    " not the AMQP one?",
                    permanent=True,
                ) from None
            except httpx.HTTPError as exc:
                failure = BrokerUnavailable(f"{where} failed: {reason(exc)}")
                if method not in IDEMPOTENT:
                    raise failure from None
            else:
                return self._checked(response, path, where), where
            if count > 1:
                log.warning("cluster %s: %s; trying the next node", self.config.slug, failure)
        assert failure is not None
        if count == 1:
            raise failure
        raise type(failure)(
            f"none of the {count} management API nodes answered; the last: {failure.message}"
        )

    def _checked(self, response: httpx.Response, path: str, where: str) -> httpx.Response:
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

    def _json(self, response: httpx.Response, method: str, path: str, where: str) -> Any:
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
