"""A minimal Kubernetes API client over `http.client`: paginated list and streaming watch.

Only what the watcher needs: `GET` a collection across all namespaces with a label selector,
page by page, and stream a watch as line-delimited JSON events. Every request opens its own
connection, so that a dead watch never poisons another request; the bearer token is read at
each connect, so a rotated projected token is picked up.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any
from urllib.parse import urlencode

from watcher.settings import Endpoint

REQUEST_TIMEOUT = 30.0
WATCH_SLACK = 30.0
"""How long past `timeoutSeconds` a silent watch may stay open before the read times out."""


class KubeError(Exception):
    """The API answered with an error; `status` is the HTTP or Status code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}".rstrip())
        self.status = status
        self.reason = reason


class GoneError(KubeError):
    """410: the resourceVersion left the server's history; the caller must list again."""


class StreamError(Exception):
    """The watch stream broke (a partial or malformed event line)."""


def error_from_status(status: int, body: bytes) -> KubeError:
    """The error for an HTTP error response; only the Status `reason` is kept (never data)."""
    reason = ""
    try:
        document = json.loads(body)
        if isinstance(document, dict):
            reason = str(document.get("reason") or "")
    except ValueError:
        pass
    return (GoneError if status == 410 else KubeError)(status, reason)


def error_from_event(obj: Mapping[str, Any]) -> KubeError:
    """The error carried by an `ERROR` watch event (a Status object)."""
    code = obj.get("code")
    status = code if isinstance(code, int) else 500
    reason = str(obj.get("reason") or "")
    return (GoneError if status == 410 else KubeError)(status, reason)


def _enable_keepalive(sock: socket.socket | None) -> None:
    """TCP keep-alive, so a silently dead peer is noticed in about a minute, not hours."""
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


class Client:
    """Talks to one API server.

    Args:
        endpoint: where the server is and how to authenticate.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._context = endpoint.ssl_context()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()

    # -- connections --------------------------------------------------------------------

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._context is not None:
            return http.client.HTTPSConnection(
                self.endpoint.host, self.endpoint.port, timeout=timeout, context=self._context
            )
        return http.client.HTTPConnection(self.endpoint.host, self.endpoint.port, timeout=timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "integration-hub-watcher"}
        token = self.endpoint.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _get(
        self, conn: http.client.HTTPConnection, resource: str, query: Mapping[str, str]
    ) -> http.client.HTTPResponse:
        """Send a GET for a core collection and return the response if it is a 200.

        Raises:
            KubeError: on an error status (its body is read and the connection kept usable).
        """
        path = f"{self.endpoint.prefix}/api/v1/{resource}?{urlencode(query)}"
        conn.request("GET", path, headers=self._headers())
        _enable_keepalive(conn.sock)
        response = conn.getresponse()
        if response.status != 200:
            raise error_from_status(response.status, response.read())
        return response

    def close_all(self) -> None:
        """Shut down every open connection (unblocks a thread reading a watch)."""
        with self._lock:
            connections = list(self._open)
        for conn in connections:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _track(self, conn: http.client.HTTPConnection, is_open: bool) -> None:
        with self._lock:
            (self._open.add if is_open else self._open.discard)(conn)

    # -- verbs --------------------------------------------------------------------------

    def list(
        self,
        resource: str,
        selector: str,
        page_size: int,
        visit: Callable[[dict[str, Any]], None],
    ) -> str:
        """List a collection in all namespaces, page by page, calling `visit` on each item.

        Returns:
            The list's resourceVersion, to watch from.

        Raises:
            KubeError: on an error answer.
            OSError: on a connection failure.
            http.client.HTTPException: on a broken response.
            ValueError: on a malformed body.
        """
        conn = self._connect(REQUEST_TIMEOUT)
        self._track(conn, True)
        try:
            query = {"labelSelector": selector, "limit": str(page_size)}
            while True:
                page = json.loads(self._get(conn, resource, query).read())
                for item in page.get("items") or []:
                    visit(item)
                metadata = page.get("metadata") or {}
                token = metadata.get("continue")
                if not token:
                    return str(metadata.get("resourceVersion") or "")
                query["continue"] = token
        finally:
            self._track(conn, False)
            conn.close()

    def watch(
        self,
        resource: str,
        selector: str,
        resource_version: str,
        timeout: int,
        on_connected: Callable[[], None] = lambda: None,
    ) -> Generator[dict[str, Any], None, None]:
        """Watch a collection in all namespaces from `resource_version`, yielding events.

        The generator ends when the server ends the stream cleanly (`timeoutSeconds`).
        `on_connected` is called once the server has accepted the watch.

        Raises:
            KubeError: on an error answer or an `ERROR` event (`GoneError` for 410).
            StreamError: when the stream breaks mid-event.
            OSError: on a connection failure.
            http.client.HTTPException: on a broken response.
        """
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
            "labelSelector": selector,
        }
        conn = self._connect(timeout + WATCH_SLACK)
        self._track(conn, True)
        try:
            response = self._get(conn, resource, query)
            on_connected()
            while True:
                line = response.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                yield parse_event(line)
        finally:
            self._track(conn, False)
            conn.close()


def parse_event(line: bytes) -> dict[str, Any]:
    """Decode one watch line; raise the error an `ERROR` event carries.

    Raises:
        StreamError: when the line is partial or not an event.
        KubeError: for an `ERROR` event.
    """
    if not line.endswith(b"\n"):
        raise StreamError("watch stream cut mid-event")
    try:
        event = json.loads(line)
    except ValueError:
        raise StreamError("malformed watch event") from None
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise StreamError("malformed watch event")
    if event.get("type") == "ERROR":
        raise error_from_event(event["object"])
    return event
