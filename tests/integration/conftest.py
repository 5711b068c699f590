"""Fixtures for tests against a real Juju controller (≥ 3.4; tested on 3.6) on Kubernetes.

`make integration-charms` packs both charms (`charmcraft pack`; the requirer's lib is copied in
first) and `make integration-real` then runs this suite with `CHARM_PATH` and
`REQUIRER_CHARM_PATH` set (see `tests/integration/README.md`). `KUBECONFIG` must point at the
model's cluster: the tests read it with lightkube and spark8t, and deploy MinIO into it.
`KEEP_MODEL=1` keeps the model after the run.

Where no controller is reachable, every test is skipped with the reason. On a failure, the
model's `juju debug-log` is printed when the model is torn down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jubilant
import pytest

from tests.integration.helpers import HUB, IMAGE, Minio, deploy_minio, remove_namespace

FAILED = pytest.StashKey[bool]()


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


def _packed(variable: str) -> Path:
    path = os.environ.get(variable)
    if not path or not Path(path).is_file():
        pytest.fail(f"{variable} does not name a packed charm: run `make integration-charms`")
    return Path(path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Remember that a test of the session failed (for the debug-log dump)."""
    report = yield
    if report.failed:
        item.session.stash[FAILED] = True
    return report


@pytest.fixture(scope="session")
def charms() -> tuple[Path, Path]:
    """The packed hub and requirer charms (skips without a controller, fails without charms)."""
    problem = _controller_problem()
    if problem:
        pytest.skip(problem)
    return _packed("CHARM_PATH"), _packed("REQUIRER_CHARM_PATH")


@pytest.fixture(scope="module")
def juju(charms: tuple[Path, Path], request: pytest.FixtureRequest) -> Iterator[jubilant.Juju]:
    """A new model with the hub deployed, trusted and idle."""
    with jubilant.temp_model(keep=bool(os.environ.get("KEEP_MODEL"))) as juju:
        juju.wait_timeout = 15 * 60
        juju.deploy(charms[0], HUB, trust=True, resources={"integration-hub-image": IMAGE})
        juju.wait(jubilant.all_agents_idle, error=jubilant.any_error)
        try:
            yield juju
        finally:
            if request.session.stash.get(FAILED, False):
                print(f"\n---- juju debug-log ({juju.model}) ----\n{juju.debug_log(limit=2000)}")


@pytest.fixture(scope="module")
def minio(charms: tuple[Path, Path]) -> Iterator[Minio]:
    """A MinIO server of our own in the cluster (namespace `minio-it`), removed afterwards."""
    server = deploy_minio()
    try:
        yield server
    finally:
        remove_namespace(server.namespace)
