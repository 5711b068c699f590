"""``KubeServer``: an in-process fake Kubernetes API server on loopback HTTP, for tests.

Real clients (lightkube, spark8t) talk to it over real HTTP/1.1. It serves the core and RBAC
resources the hub and spark8t use, with the semantics and messages listed in
``reference/k8s-api-surface.md``: selectors, pagination, watches with selector-aware event types,
optimistic concurrency, the four patch types, Secret validation, owner-reference garbage
collection, SelfSubjectAccessReview, a request log and fault injection.

Example::

    with KubeServer() as server:
        server.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
        client = lightkube.Client(lightkube.KubeConfig.from_file(server.write_kubeconfig(tmp)))
"""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.kube_server import resources
from tests.kube_server.faults import Fault, FaultSet, RequestRecord
from tests.kube_server.handler import Handler
from tests.kube_server.operations import DEFAULT_USER, Api
from tests.kube_server.store import Store

__all__ = ["Fault", "KubeServer", "RequestRecord"]


class _HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its KubeServer and stays quiet on client resets."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, kube: KubeServer):
        super().__init__(("127.0.0.1", 0), Handler)
        self.kube = kube

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore errors of connections the client (or stop()) closed."""


class KubeServer:
    """A fake Kubernetes API server listening on ``127.0.0.1`` (random port).

    Args:
        namespaces: namespaces that exist from the start (a real cluster has ``default``).
        history_size: how many events the watch history keeps (older resourceVersions get 410).
        user: the user name quoted in Forbidden messages.
        seed: the seed of the random generator used by probabilistic faults.
        latency: seconds every non-watch request waits before it is handled (a cluster's
            round trip); mutable.
        max_in_flight: at most this many non-watch requests are handled at once; one more is
            answered 429 with ``Retry-After: retry_after``, as API Priority and Fairness does
            (None: no limit); mutable.
        retry_after: the ``Retry-After`` seconds of those 429s.
    """

    def __init__(
        self,
        namespaces: tuple[str, ...] = ("default",),
        history_size: int = 1000,
        user: str = DEFAULT_USER,
        seed: int = 0,
        latency: float = 0.0,
        max_in_flight: int | None = None,
        retry_after: int = 1,
    ):
        self.latency = latency
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.rejected = 0
        """How many requests the concurrency limit answered 429."""
        self.peak_in_flight = 0
        """The most non-watch requests handled at once."""
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self.store = Store(history_size)
        self.api = Api(self.store, user)
        self.faults = FaultSet(seed)
        self._requests: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self.connections_opened = 0
        """Client connections accepted since the server started."""
        self._conn_lock = threading.Lock()
        self._stopped = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        for namespace in namespaces:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> KubeServer:
        """Bind a random loopback port and serve in a daemon thread.

        Returns:
            The server itself.
        """
        if self._httpd is not None:
            return self
        with self.store.cond:
            self.store.stopping = False
        self._stopped.clear()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"kube-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: end watches, close every connection and the listening socket."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopped.set()
        self.store.stop()
        httpd.shutdown()
        with self._conn_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, handler_thread in connections:
            handler_thread.join(timeout=5)
        httpd.server_close()
        thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> KubeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on (only while started)."""
        if self._httpd is None:
            raise RuntimeError("KubeServer is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The server URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, namespace: str | None = None) -> dict[str, Any]:
        """Build a kubeconfig document for this server.

        Args:
            namespace: the context's namespace (None: clients use ``default``).

        Returns:
            The kubeconfig as a dict (spark8t and lightkube accept it as is).
        """
        context: dict[str, Any] = {"cluster": "kube-server", "user": "test"}
        if namespace:
            context["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-server", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {}}],
            "contexts": [{"name": "kube-server", "context": context}],
            "current-context": "kube-server",
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], namespace: str | None = None) -> Path:
        """Write a kubeconfig file for this server.

        Args:
            path: the file to write, or a directory to write ``kubeconfig`` in.
            namespace: the context's namespace.

        Returns:
            The path of the file written.
        """
        target = Path(path)
        if target.is_dir():
            target = target / "kubeconfig"
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        return target

    # -- direct object access (no HTTP, not logged) -------------------------------------------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object directly; its namespace is created when missing.

        Args:
            obj: the object (``apiVersion``, ``kind``, ``metadata.name``, optional namespace,
                which defaults to ``default`` for namespaced kinds).

        Returns:
            A copy of the stored object (uid, creationTimestamp, resourceVersion filled in).
        """
        return self.api.put(obj)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Return a copy of an object, or None (namespace defaults to ``default``)."""
        rt = resources.by_kind(kind)
        entry = self.store.get(rt.kind, (namespace or "default") if rt.namespaced else None, name)
        return json.loads(entry.raw) if entry else None

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the objects of a kind, in one namespace or all (sorted)."""
        rt = resources.by_kind(kind)
        with self.store.cond:
            keys = self.store.keys(rt.kind, namespace if rt.namespaced else None)
            return [json.loads(e.raw) for e in self.store.entries(rt.kind, keys)]

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete an object (and what it owns); a missing object is ignored."""
        rt = resources.by_kind(kind)
        self.store.remove(rt.kind, ((namespace or "default") if rt.namespaced else "", name))

    @property
    def resource_version(self) -> str:
        """The current global resourceVersion."""
        return str(self.store.resource_version)

    # -- authorisation --------------------------------------------------------------------

    @property
    def denied(self) -> set[tuple[str, str]]:
        """(verb, resource) pairs that are forbidden, e.g. ``("list", "secrets")``; mutable."""
        return self.api.denied

    @denied.setter
    def denied(self, value: set[tuple[str, str]]) -> None:
        self.api.denied = set(value)

    # -- request log ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._log_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._log_lock:
            self._requests.clear()

    def count(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        watch: bool | None = False,
    ) -> int:
        """Count logged requests.

        Args:
            method: only this HTTP method (None: any).
            path_contains: only paths containing this substring (None: any).
            watch: False (default) counts non-watch requests only, True watches only, None both.

        Returns:
            The number of matching requests.
        """
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
            and (watch is None or r.watch == watch)
        )

    def record(self, record: RequestRecord) -> None:
        """Append to the request log (used by the handler)."""
        with self._log_lock:
            self._requests.append(record)

    # -- faults -----------------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Inject a fault; returns it (its ``times`` counts down as it is used)."""
        self.faults.add(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.faults.clear()

    # -- used by the handler ----------------------------------------------------------------

    def admit(self) -> bool:
        """Take a slot for a non-watch request; False (and counted) when all are taken."""
        with self._flight_lock:
            if self.max_in_flight is not None and self._in_flight >= self.max_in_flight:
                self.rejected += 1
                return False
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return True

    def release(self) -> None:
        """Give back the slot `admit` took."""
        with self._flight_lock:
            self._in_flight -= 1

    def sleep(self, seconds: float) -> None:
        """Sleep, waking up early when the server stops."""
        self._stopped.wait(seconds)

    def register_connection(self, sock: socket.socket) -> bool:
        """Track a client connection; False when the server is stopping."""
        with self._conn_lock:
            if self._stopped.is_set():
                return False
            self._connections[sock] = threading.current_thread()
            self.connections_opened += 1
            return True

    def unregister_connection(self, sock: socket.socket) -> None:
        """Forget a client connection."""
        with self._conn_lock:
            self._connections.pop(sock, None)
