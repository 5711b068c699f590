"""One real hook through the packed charm's `dispatch`, with the layout's own interpreter.

The `.charm` is the one `tests.pack.build` made (`PACKED_CHARM`, set by the `pack` tox
environment; built here when unset). It is unzipped as Juju would, and `config-changed` runs
through `./dispatch` with ops' `JUJU_*` environment, the fake hook tools of `hook_tools` on
PATH, and the charm's Kubernetes client pointed at the test API server: the charm must write
every Spark service account's Secret and set an active status.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.kube_server import KubeServer
from tests.pack import hook_tools
from tests.pack.build import BASE_PYTHON, base_python

APP = "spark-integration-hub-k8s"
MODEL_UUID = "00000000-0000-4000-8000-0000000000aa"
SPARK8T_LABELS = {"app.kubernetes.io/managed-by": "spark8t"}


@pytest.fixture(scope="module")
def packed_charm(tmp_path_factory) -> Path:
    if path := os.environ.get("PACKED_CHARM"):
        return Path(path)
    if importlib.util.find_spec("charmcraft") is None:
        pytest.skip("charmcraft is not installed: run `tox -e pack`")
    from tests.pack.build import main

    return main(tmp_path_factory.mktemp("pack"))


@pytest.fixture
def charm_dir(packed_charm: Path, tmp_path: Path) -> Path:
    """The `.charm` unzipped with its modes, as Juju unpacks it into the charm container."""
    target = tmp_path / "charm"
    with zipfile.ZipFile(packed_charm) as archive:
        for info in archive.infolist():
            archive.extract(info, target)
            mode = info.external_attr >> 16
            if mode & 0o777:
                (target / info.filename).chmod(mode & 0o777)
    return target


def _put_account(server: KubeServer, namespace: str, name: str) -> None:
    server.put(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": SPARK8T_LABELS},
        }
    )


def test_the_packed_layout_is_what_juju_runs(charm_dir):
    for name in ("dispatch", "src/charm.py"):
        assert os.access(charm_dir / name, os.X_OK), name
    assert (charm_dir / "venv" / "ops").is_dir()
    assert (charm_dir / "lib" / "charms").is_dir()
    assert yaml.safe_load((charm_dir / "metadata.yaml").read_text())["name"] == APP
    assert yaml.safe_load((charm_dir / "manifest.yaml").read_text())["bases"][0]["channel"] == (
        "24.04"
    )
    assert not (charm_dir / "tests").exists()
    assert not (charm_dir / "docs").exists()
    built_for = {path.name.split(".")[1] for path in (charm_dir / "venv").glob("*.so")}
    built_for |= {p.name for p in (charm_dir / "venv").glob("pydantic_core/*.so")}
    assert any("cpython-" in name for name in built_for)


def test_config_changed_through_dispatch_writes_every_accounts_secret(
    charm_dir, kube_server: KubeServer, tmp_path
):
    _put_account(kube_server, "team-a", "alice")
    _put_account(kube_server, "team-b", "bob")
    kubeconfig = kube_server.write_kubeconfig(tmp_path / "kubeconfig")
    storage = tmp_path / "hub-state"
    storage.mkdir()
    tools = tmp_path / "hook-tools"
    log = tmp_path / "hook-tools.log"
    unit = f"{APP}/0"
    hook_tools.install(
        tools,
        {
            "leader": True,
            "unit": unit,
            "config": {"spark-properties": "spark.executor.memory=4g"},
            "storage": {"hub-state/0": str(storage)},
        },
        log,
    )
    python = base_python()
    interpreter_dir = tmp_path / "python"
    interpreter_dir.mkdir()
    (interpreter_dir / "python3").symlink_to(python or Path(sys.executable))
    env = {
        "PATH": f"{tools}:{interpreter_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "KUBECONFIG": str(kubeconfig),
        "NO_PROXY": "127.0.0.1",
        "JUJU_DISPATCH_PATH": "hooks/config-changed",
        "JUJU_UNIT_NAME": unit,
        "JUJU_MODEL_NAME": "spark",
        "JUJU_MODEL_UUID": MODEL_UUID,
        "JUJU_VERSION": "3.6.4",
        "JUJU_CHARM_DIR": str(charm_dir),
        "JUJU_HOOK_NAME": "config-changed",
        "JUJU_CONTEXT_ID": f"{unit}-config-changed-1",
        "JUJU_AGENT_SOCKET_ADDRESS": "@/var/lib/juju/agents/unit-0/agent.socket",
    }
    done = subprocess.run(
        ["./dispatch"], cwd=charm_dir, env=env, capture_output=True, text=True, timeout=120
    )
    called = hook_tools.calls(log)
    assert done.returncode == 0, (done.stderr[-4000:], "\n".join(map(str, called[-12:])))
    status, message = [args for tool, args in called if tool == "status-set"][-1][-3::2]
    # No Pebble here: the watcher's health is unknown, the pass itself is done.
    assert (status, message.split(";")[0]) == ("active", "2 accounts in sync"), message
    for namespace, name in (("team-a", "alice"), ("team-b", "bob")):
        secret = kube_server.get("Secret", f"integrator-hub-conf-{name}", namespace)
        assert secret is not None
        values = {base64.b64decode(v).decode() for v in secret["data"].values()}
        assert "4g" in values
        assert f"{MODEL_UUID}/{APP}" in str(secret["metadata"]["annotations"])
    assert (storage / "hub.sqlite3").exists()
    if python is None:
        pytest.skip(f"ran with Python {sys.version.split()[0]}: no python{BASE_PYTHON} here")
