"""Fixtures for tests against a real Juju controller and Kubernetes cluster (jubilant).

They run only where a controller is reachable and the charms are packed:

    charmcraft pack                                   # -> spark-integration-hub-k8s_*.charm
    (cd tests/integration/requirer-charm && charmcraft pack)
    export CHARM_PATH=$PWD/spark-integration-hub-k8s_amd64.charm
    export REQUIRER_CHARM_PATH=$PWD/tests/integration/requirer-charm/spark-account-requirer_*.charm
    export KUBECONFIG=~/.kube/config
    tox -e integration

Everywhere else every test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

HUB = "spark-integration-hub-k8s"
IMAGE = "ghcr.io/canonical/spark-integration-hub:3.4-22.04_edge"


def _controller_problem() -> str | None:
    if shutil.which("juju") is None:
        return "no `juju` CLI on PATH: integration tests need a Juju controller on Kubernetes"
    try:
        subprocess.run(["juju", "show-controller"], check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError):
        return "no Juju controller reachable (`juju show-controller` failed)"
    if not os.environ.get("KUBECONFIG"):
        return "KUBECONFIG is not set: the tests read the cluster with lightkube and spark8t"
    return None


@pytest.fixture(scope="session")
def hub_charm() -> Path:
    problem = _controller_problem()
    if problem:
        pytest.skip(problem)
    path = os.environ.get("CHARM_PATH")
    if not path or not Path(path).exists():
        pytest.skip("CHARM_PATH does not name a packed charm (run `charmcraft pack`)")
    return Path(path)


@pytest.fixture(scope="module")
def juju(hub_charm: Path) -> Iterator:
    import jubilant

    with jubilant.temp_model(keep=bool(os.environ.get("KEEP_MODEL"))) as juju:
        juju.wait_timeout = 15 * 60
        juju.deploy(hub_charm, HUB, trust=True, resources={"integration-hub-image": IMAGE})
        juju.wait(jubilant.all_agents_idle)
        yield juju
