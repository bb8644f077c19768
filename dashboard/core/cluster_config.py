"""Cluster configuration: which brokers the dashboard watches, from the environment.

With no configuration the dashboard watches the local RabbitMQ and Kafka that
``ops/up.sh`` starts. ``MQB_CLUSTERS_FILE`` names a TOML file describing
any number of clusters (see the README). A RabbitMQ cluster of several nodes
may give ``amqp_url`` and ``management_url`` as arrays, one URL per node: the
first is used first, the others when it refuses or times out. Every URL is
checked here (scheme, host, port; no password; one vhost for all AMQP URLs).
Secrets never live in that file: it
names environment variables (``password_env``, ``secret_options_env``) whose
values, or ``*_FILE`` files, hold them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from brokers.base import ClusterConfig, ConfigError, Secret
from brokers.base.config import split_credentials
from brokers.registry import KINDS, kind_named
from dashboard.core.env import envfloat, envlist, envsecret, envstr

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
SECRET_WORDS = ("password", "secret", "token", "key.pem", "credentials")
FILE_KEYS = {
    "slug", "kind", "name", "amqp_url", "management_url", "username", "password_env",
    "bootstrap_servers", "client_options", "secret_options_env", "timeout", "protected",
    "read_only", "verify_tls", "prometheus_url",
}  # fmt: skip


def load_clusters() -> tuple[ClusterConfig, ...]:
    path = envstr("MQB_CLUSTERS_FILE")
    clusters = _from_file(Path(path)) if path else _defaults()
    slugs = [c.slug for c in clusters]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ConfigError(f"duplicate cluster slug(s): {', '.join(duplicates)}")
    return tuple(clusters)


class _Environment:
    """What a kind's ``local_cluster`` reads: the process environment, secrets by file too."""

    def text(self, name: str, default: str = "") -> str:
        return envstr(name, default)

    def secret(self, name: str, default: str = "") -> str:
        return envsecret(name, default)


def _defaults() -> list[ClusterConfig]:
    """The local cluster of each kind named in MQB_DEFAULT_CLUSTERS (default: all of them)."""
    timeout = envfloat("MQB_BROKER_TIMEOUT", 4.0)
    clusters: list[ClusterConfig] = []
    for name in envlist("MQB_DEFAULT_CLUSTERS", ",".join(KINDS)):
        make = kind_named(name).local_cluster
        if make is not None:
            clusters.append(make(_Environment(), timeout))
    return clusters


def _from_file(path: Path) -> list[ClusterConfig]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"MQB_CLUSTERS_FILE={path}: cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"MQB_CLUSTERS_FILE={path}: not valid TOML: {exc}") from None
    entries = data.get("cluster")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no [[cluster]] entries")
    return [_cluster_from_table(path, i, entry) for i, entry in enumerate(entries, 1)]


def _cluster_from_table(path: Path, index: int, entry: dict[str, Any]) -> ClusterConfig:
    where = f"{path}: cluster #{index}"
    unknown = set(entry) - FILE_KEYS
    if "password" in unknown:
        raise ConfigError(
            f"{where}: secrets may not be written in the file; set password_env to the name"
            " of an environment variable instead"
        )
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    slug = str(entry.get("slug", ""))
    if not SLUG_RE.match(slug):
        raise ConfigError(f"{where}: slug {slug!r} must be lowercase letters, digits and dashes")
    kind = str(entry.get("kind", ""))
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(sorted(KINDS))}")
    amqp_urls, url_user = _amqp_urls(where, entry.get("amqp_url", ""))
    management_urls = _management_urls(where, entry.get("management_url", ""))
    prometheus_urls = _management_urls(where, entry.get("prometheus_url", ""), "prometheus_url")
    options = {str(k): str(v) for k, v in dict(entry.get("client_options", {})).items()}
    for key in options:
        if any(word in key.lower() for word in SECRET_WORDS):
            raise ConfigError(
                f"{where}: client option {key!r} is a secret; put it under"
                " [cluster.secret_options_env] as the name of an environment variable"
            )
    secret_options: dict[str, Secret] = {}
    for key, env_name in dict(entry.get("secret_options_env", {})).items():
        value = envsecret(str(env_name))
        if not value:
            raise ConfigError(f"{where}: environment variable {env_name} (for {key}) is not set")
        secret_options[str(key)] = Secret(value)
    password = ""
    if entry.get("password_env"):
        password = envsecret(str(entry["password_env"]))
        if not password:
            raise ConfigError(f"{where}: environment variable {entry['password_env']} is not set")
    return ClusterConfig(
        slug=slug,
        kind=kind,
        name=str(entry.get("name", slug)),
        amqp_url=amqp_urls[0] if amqp_urls else "",
        amqp_failover_urls=amqp_urls[1:],
        management_url=management_urls[0] if management_urls else "",
        management_failover_urls=management_urls[1:],
        prometheus_urls=prometheus_urls,
        username=str(entry.get("username", url_user)),
        password=Secret(password),
        bootstrap_servers=str(entry.get("bootstrap_servers", "")),
        client_options=options,
        secret_options=secret_options,
        timeout=float(entry.get("timeout", envfloat("MQB_BROKER_TIMEOUT", 4.0))),
        protected=bool(entry.get("protected", False)),
        read_only=bool(entry.get("read_only", False)),
        verify_tls=bool(entry.get("verify_tls", True)),
    )


def _url_list(where: str, key: str, value: object) -> list[str]:
    """A URL key's value as a list: one string, or an array of strings (one per node)."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise ConfigError(f"{where}: {key} must be a URL or a non-empty array of URLs")


def _checked_url(where: str, key: str, url: str, schemes: tuple[str, ...]) -> SplitResult:
    """``url`` split, if it has one of ``schemes``, a host and a valid port; errors never
    repeat the URL (it may hold a password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise ConfigError(f"{where}: {key} has an invalid host or port") from None
    if parts.scheme not in schemes:
        raise ConfigError(f"{where}: {key} must start with {' or '.join(schemes)}://")
    if not parts.hostname:
        raise ConfigError(f"{where}: {key} names no host")
    return parts


def _amqp_urls(where: str, value: object) -> tuple[tuple[str, ...], str]:
    """The AMQP URLs without credentials, and the username they name (if any).

    Every node must name the same vhost and the same user, and none a password."""
    urls: list[str] = []
    users: set[str] = set()
    vhosts: set[str] = set()
    for url in _url_list(where, "amqp_url", value):
        parts = _checked_url(where, "amqp_url", url, ("amqp", "amqps"))
        safe, user, password = split_credentials(url)
        if password:
            raise ConfigError(f"{where}: amqp_url contains a password; use password_env")
        if parts.query or parts.fragment:
            raise ConfigError(f"{where}: amqp_url may not have a query or fragment")
        if user:
            users.add(user)
        vhosts.add(parts.path or "/")
        urls.append(safe)
    if len(users) > 1:
        raise ConfigError(f"{where}: the amqp_url entries name different users")
    if len(vhosts) > 1:
        raise ConfigError(f"{where}: the amqp_url entries name different vhosts")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"{where}: amqp_url lists a node twice")
    return tuple(urls), next(iter(users), "")


def _management_urls(where: str, value: object, key: str = "management_url") -> tuple[str, ...]:
    """The management API (or Prometheus endpoint) URLs, one per node; no credentials,
    query or fragment."""
    urls: list[str] = []
    for url in _url_list(where, key, value):
        parts = _checked_url(where, key, url, ("http", "https"))
        if parts.username or parts.password:
            raise ConfigError(f"{where}: {key} contains credentials; use username and password_env")
        if parts.query or parts.fragment:
            raise ConfigError(f"{where}: {key} may not have a query or fragment")
        urls.append(url)
    if len(set(urls)) != len(urls):
        raise ConfigError(f"{where}: {key} lists a node twice")
    return tuple(urls)
