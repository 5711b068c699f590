"""Pytest fixtures for the fake Kubernetes API server.

``kube_server`` starts a fresh :class:`~tests.kube_server.KubeServer` per test and stops it after;
``kubeconfig`` writes a kubeconfig for it into ``tmp_path`` and points ``KUBECONFIG`` at it, so no
real cluster configuration is ever read; ``spark8t`` is spark8t's own service-account registry
over that server.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from tests.kube_server.server import KubeServer

__all__ = ["kube_server", "kubeconfig", "spark8t"]


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


@pytest.fixture
def spark8t(kubeconfig: Path) -> Iterator[SimpleNamespace]:
    """spark8t's service-account registry over the test server.

    spark8t reads the environment when imported, so it is imported here, once ``KUBECONFIG``
    points at the test server.
    """
    from spark8t.domain import Defaults
    from spark8t.domain import ServiceAccount as SparkAccount
    from spark8t.kube_interface.lightkube import LightKubeInterface
    from spark8t.registry.k8s import K8sServiceAccountRegistry
    from spark8t.utils import PropertyFile

    kube = LightKubeInterface(str(kubeconfig), Defaults({}))
    registry = K8sServiceAccountRegistry(kube)

    def create(name: str, namespace: str) -> None:
        account = SparkAccount(name, namespace, kube.api_server, extra_confs=PropertyFile({}))
        registry.create(account)

    try:
        yield SimpleNamespace(registry=registry, create=create, PropertyFile=PropertyFile)
    finally:
        kube.client.close()
