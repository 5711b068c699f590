"""A test API server in a process of its own, so the bench's client does not share its GIL.

In one process, the hub's writer threads and the server's handler threads take turns on one
interpreter lock, and on a 2-CPU machine the server's CPU time is charged to the hub's pass: the
concurrent applier then looks slower than it is against a real cluster, whose API server runs
elsewhere. `RemoteKubeServer` starts a `KubeServer` in a child process (a `multiprocessing`
manager) and offers the part of its interface the bench uses; every call crosses a pipe, so
seeding is done before the clock starts.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.managers import BaseManager, BaseProxy
from pathlib import Path
from typing import Any

from tests.kube_server import KubeServer, RequestRecord

_ATTRIBUTES = frozenset({"latency", "max_in_flight", "retry_after", "rejected"})


class _ServerProxy(BaseProxy):
    """The manager's proxy of a `KubeServer`: its methods, and its tunables as attributes."""

    _exposed_ = (
        "put",
        "list",
        "delete",
        "write_kubeconfig",
        "clear_requests",
        "stop",
        "__getattribute__",
        "__setattr__",
    )

    def __getattr__(self, name: str) -> Any:
        if name in _ATTRIBUTES or name == "requests":
            return self._callmethod("__getattribute__", (name,))
        if name in self._exposed_:
            return lambda *args: self._callmethod(name, args)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ATTRIBUTES:
            self._callmethod("__setattr__", (name, value))
        else:
            super().__setattr__(name, value)


def _started() -> KubeServer:
    return KubeServer().start()


class _Manager(BaseManager):
    pass


_Manager.register("KubeServer", _started, proxytype=_ServerProxy)


class RemoteKubeServer:
    """A started `KubeServer` in a child process; `stop` ends both.

    Attributes:
        latency, max_in_flight, retry_after, rejected: the server's, read and set remotely.
    """

    def __init__(self) -> None:
        """Start the child process and the server in it."""
        self._manager = _Manager(ctx=multiprocessing.get_context("spawn"))
        self._manager.start()
        self._server: Any = self._manager.KubeServer()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ATTRIBUTES:
            setattr(self._server, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the server's request log, oldest first."""
        return self._server.requests

    def write_kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig pointing at the server (the child writes the same file system)."""
        return self._server.write_kubeconfig(str(path))

    def stop(self) -> None:
        """Stop the server and its process."""
        try:
            self._server.stop()
        finally:
            self._manager.shutdown()
