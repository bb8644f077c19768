"""Cluster configuration: which brokers the dashboard watches, from the environment.

With no configuration the dashboard watches the local RabbitMQ and Kafka that
``ops/up.sh`` starts. ``MQB_CLUSTERS_FILE`` names a TOML file describing
any number of clusters (see the README). Secrets never live in that file: it
names environment variables (``password_env``, ``secret_options_env``) whose
values, or ``*_FILE`` files, hold them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from brokers.base import ClusterConfig, ConfigError, Secret
from brokers.base.config import split_credentials
from brokers.registry import KINDS, kind_named
from dashboard.core.env import envfloat, envlist, envsecret, envstr

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
SECRET_WORDS = ("password", "secret", "token", "key.pem", "credentials")
FILE_KEYS = {
    "slug", "kind", "name", "amqp_url", "management_url", "username", "password_env",
    "bootstrap_servers", "client_options", "secret_options_env", "timeout", "protected",
    "read_only", "verify_tls",
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
    amqp_url, url_user, url_password = split_credentials(str(entry.get("amqp_url", "")))
    if url_password:
        raise ConfigError(f"{where}: amqp_url contains a password; use password_env")
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
        amqp_url=amqp_url,
        management_url=str(entry.get("management_url", "")),
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
