"""The watcher's settings, read from its environment (set by the charm's Pebble layer)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from watcher.followup import DEFAULT_FOLLOW_UP

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_PEBBLE = "/charm/bin/pebble"
DEFAULT_HEARTBEAT = "/tmp/hub-watcher.heartbeat"


class SettingsError(Exception):
    """The environment does not say how to reach the API server, or says it wrongly."""


@dataclass(frozen=True)
class Endpoint:
    """How to reach the Kubernetes API server.

    Attributes:
        scheme: `http` or `https`.
        host: the host name or address (no brackets for IPv6).
        port: the TCP port.
        prefix: a path prefix of the server URL ("" for none).
        token: a fixed bearer token (`HUB_WATCHER_TOKEN`), if any.
        token_file: a file holding the token, re-read on each connect (in cluster).
        ca_file: the CA bundle that signs the server's certificate (None: system CAs).
    """

    scheme: str
    host: str
    port: int
    prefix: str = ""
    token: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None

    def bearer(self) -> str | None:
        """The current token: the fixed one, or the token file's content read now.

        Raises:
            OSError: when the token file cannot be read (retried like any connection error).
        """
        if self.token_file is not None:
            return self.token_file.read_text().strip() or None
        return self.token

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for https endpoints, None for plain http."""
        if self.scheme != "https":
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}"


def endpoint_from_env(env: Mapping[str, str], sa_dir: Path = SERVICE_ACCOUNT_DIR) -> Endpoint:
    """The API endpoint: `HUB_WATCHER_SERVER` (tests, demo) or the pod's in-cluster service.

    Raises:
        SettingsError: when neither is available, or the URL is malformed.
    """
    server = env.get("HUB_WATCHER_SERVER", "").strip()
    if server:
        split = urlsplit(server)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise SettingsError(f"HUB_WATCHER_SERVER is not an http(s) URL: {server!r}")
        try:
            port = split.port or (443 if split.scheme == "https" else 80)
        except ValueError as error:
            raise SettingsError(f"HUB_WATCHER_SERVER has a bad port: {server!r}") from error
        ca = env.get("HUB_WATCHER_CA")
        return Endpoint(
            split.scheme,
            split.hostname,
            port,
            split.path.rstrip("/"),
            token=env.get("HUB_WATCHER_TOKEN") or None,
            ca_file=Path(ca) if ca else None,
        )
    host = env.get("KUBERNETES_SERVICE_HOST", "").strip()
    if not host:
        raise SettingsError("neither HUB_WATCHER_SERVER nor KUBERNETES_SERVICE_HOST is set")
    port_text = env.get("KUBERNETES_SERVICE_PORT", "443").strip() or "443"
    if not port_text.isdigit():
        raise SettingsError(f"KUBERNETES_SERVICE_PORT is not a port: {port_text!r}")
    return Endpoint(
        "https",
        host.strip("[]"),
        int(port_text),
        token_file=sa_dir / "token",
        ca_file=sa_dir / "ca.crt",
    )


def _number(env: Mapping[str, str], name: str, default: float, low: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} is not a number: {text!r}") from None
    if value < low:
        raise SettingsError(f"{name} must be at least {low}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the watcher is told by its environment.

    Attributes:
        endpoint: the API server.
        owner: the owner annotation of this hub's Secrets (`<model-uuid>/<app>`).
        pebble: the `pebble` binary used to record notices.
        heartbeat: the heartbeat file `--check` reads.
        debounce: the minimum interval between two notices, in seconds.
        watch_timeout: the `timeoutSeconds` of each watch request.
        page_size: the `limit` of each list page.
        follow_up: the charm's follow-up request file (see `watcher.followup`).
    """

    endpoint: Endpoint
    owner: str
    pebble: str = DEFAULT_PEBBLE
    heartbeat: Path = Path(DEFAULT_HEARTBEAT)
    debounce: float = 1.0
    watch_timeout: int = 300
    page_size: int = 500
    follow_up: Path = Path(DEFAULT_FOLLOW_UP)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the settings from `env`.

        Raises:
            SettingsError: when a setting is missing or malformed.
        """
        owner = env.get("HUB_WATCHER_OWNER", "").strip()
        if not owner:
            raise SettingsError("HUB_WATCHER_OWNER (the hub's owner annotation) is not set")
        return cls(
            endpoint=endpoint_from_env(env),
            owner=owner,
            pebble=env.get("HUB_WATCHER_PEBBLE") or DEFAULT_PEBBLE,
            heartbeat=heartbeat_path(env),
            debounce=_number(env, "HUB_WATCHER_DEBOUNCE", 1.0, 0.0),
            watch_timeout=int(_number(env, "HUB_WATCHER_WATCH_TIMEOUT", 300, 1)),
            page_size=int(_number(env, "HUB_WATCHER_PAGE_SIZE", 500, 1)),
            follow_up=Path(env.get("HUB_WATCHER_FOLLOW_UP") or DEFAULT_FOLLOW_UP),
        )


def heartbeat_path(env: Mapping[str, str]) -> Path:
    """The heartbeat file (`HUB_WATCHER_HEARTBEAT`), shared by the service and `--check`."""
    return Path(env.get("HUB_WATCHER_HEARTBEAT") or DEFAULT_HEARTBEAT)
