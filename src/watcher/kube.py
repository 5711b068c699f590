"""A minimal Kubernetes API client over `http.client`: paginated list and streaming watch.

Only what the watcher needs: `GET` a collection across all namespaces with a label selector,
page by page, and stream a watch as line-delimited JSON events. Every request opens its own
connection, so that a dead watch never poisons another request; the bearer token is read at
each connect, so a rotated projected token is picked up.

Answers are input: a line that is complete but not an event (not JSON, nested too deep, not
a mapping, over `MAX_EVENT_BYTES`) is handed on as `MalformedError`, and the stream goes on;
a list page of the wrong shape raises `MalformedError` (the list is retried); only the Status
`reason` of an error, when it is a short word, is ever kept.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any
from urllib.parse import urlencode

from watcher.events import MalformedError, check_resource_version
from watcher.settings import Endpoint

REQUEST_TIMEOUT = 30.0
WATCH_SLACK = 30.0
"""How long past `timeoutSeconds` a silent watch may stay open before the read times out."""
MAX_EVENT_BYTES = 4 * 1024 * 1024
"""The longest watch line read: a Secret holds at most 1 MiB (1.4 MiB in base64)."""
_REASON = re.compile(r"[A-Za-z]{1,64}")
"""A Status `reason` is a CamelCase word (`Expired`, `InternalError`); anything else is dropped."""


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


class MalformedEventError(StreamError):
    """A complete watch line that is not an event; `problem` says why (never its content)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _reason(value: Any) -> str:
    return value if isinstance(value, str) and _REASON.fullmatch(value) else ""


def error_from_status(status: int, body: bytes) -> KubeError:
    """The error for an HTTP error response; only the Status `reason` is kept (never data)."""
    reason = ""
    try:
        document = json.loads(body)
        if isinstance(document, dict):
            reason = _reason(document.get("reason"))
    except (ValueError, RecursionError):
        pass
    return (GoneError if status == 410 else KubeError)(status, reason)


def error_from_event(obj: Mapping[str, Any]) -> KubeError:
    """The error carried by an `ERROR` watch event (a Status object)."""
    code = obj.get("code")
    status = 500
    if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
        status = code
    return (GoneError if status == 410 else KubeError)(status, _reason(obj.get("reason")))


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
            ValueError: on a malformed body (`MalformedError` for a page of the wrong shape).
        """
        conn = self._connect(REQUEST_TIMEOUT)
        self._track(conn, True)
        try:
            query = {"labelSelector": selector, "limit": str(page_size)}
            while True:
                items, token, version = _page(self._get(conn, resource, query).read())
                for item in items:
                    visit(item)
                if not token:
                    return version
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
    ) -> Generator[dict[str, Any] | MalformedError, None, None]:
        """Watch a collection in all namespaces from `resource_version`, yielding events.

        The generator ends when the server ends the stream cleanly (`timeoutSeconds`).
        `on_connected` is called once the server has accepted the watch. A complete line that
        is not an event is yielded as `MalformedError`, and the stream goes on.

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
                line = response.readline(MAX_EVENT_BYTES + 1)
                if not line:
                    return
                if len(line) > MAX_EVENT_BYTES and not line.endswith(b"\n"):
                    _skip_line(response)
                    yield MalformedError(f"event over {MAX_EVENT_BYTES // 2**20} MiB")
                    continue
                if not line.strip():
                    continue
                try:
                    event: dict[str, Any] | MalformedError = parse_event(line)
                except MalformedEventError as error:
                    event = MalformedError(error.problem)
                yield event
        finally:
            self._track(conn, False)
            conn.close()


def _skip_line(response: http.client.HTTPResponse) -> None:
    """Read past the rest of an over-long line."""
    while True:
        chunk = response.readline(65536)
        if not chunk or chunk.endswith(b"\n"):
            return


def _page(body: bytes) -> tuple[list[Any], str, str]:
    """A list page's items, continue token and resourceVersion.

    Raises:
        MalformedError: when the page is not a list answer.
    """
    try:
        page = json.loads(body)
    except RecursionError:
        raise MalformedError("list page nested too deeply") from None
    if not isinstance(page, dict):
        raise MalformedError("list page is not a mapping")
    items = page.get("items")
    items = [] if items is None else items
    metadata = page.get("metadata")
    metadata = {} if metadata is None else metadata
    if not isinstance(items, list) or not isinstance(metadata, dict):
        raise MalformedError("list page items or metadata of the wrong type")
    token = metadata.get("continue") or ""
    if not isinstance(token, str):
        raise MalformedError("list continue token is not a string")
    version = metadata.get("resourceVersion")
    if token or version in (None, ""):
        return items, token, ""
    return items, token, check_resource_version(version)


def parse_event(line: bytes) -> dict[str, Any]:
    """Decode one watch line; raise the error an `ERROR` event carries.

    Raises:
        StreamError: when the line is partial (`MalformedEventError`: complete, but not an event).
        KubeError: for an `ERROR` event.
    """
    if not line.endswith(b"\n"):
        raise StreamError("watch stream cut mid-event")
    try:
        event = json.loads(line)
    except RecursionError:
        raise MalformedEventError("event nested too deeply") from None
    except ValueError:
        raise MalformedEventError("event is not JSON") from None
    if not isinstance(event, dict):
        raise MalformedEventError("event is not a mapping")
    if not isinstance(event.get("object"), dict):
        raise MalformedEventError("event object is not a mapping")
    if event.get("type") == "ERROR":
        raise error_from_event(event["object"])
    return event
