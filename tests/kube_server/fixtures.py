"""Pytest fixtures for the fake Kubernetes API server.

``kube_server`` starts a fresh :class:`~tests.kube_server.KubeServer` per test and stops it after;
``kubeconfig`` writes a kubeconfig for it into ``tmp_path`` and points ``KUBECONFIG`` at it, so no
real cluster configuration is ever read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.kube_server.server import KubeServer

__all__ = ["kube_server", "kubeconfig"]


@pytest.fixture
def kube_server() -> Iterator[KubeServer]:
    """A started KubeServer, stopped at the end of the test."""
    server = KubeServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(kube_server: KubeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write a kubeconfig for ``kube_server``; point ``KUBECONFIG`` (and ``NO_PROXY``) at it."""
    path = kube_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    for variable in ("NO_PROXY", "no_proxy"):
        existing = os.environ.get(variable)
        monkeypatch.setenv(variable, f"{existing},127.0.0.1" if existing else "127.0.0.1")
    return path
