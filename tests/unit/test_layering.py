"""The layering of src/, enforced: an outside library is imported only by the module owning it."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules() -> dict[str, set[str]]:
    return {
        str(path.relative_to(SRC)): imports(path)
        for path in SRC.rglob("*.py")
        if "watcher" not in path.parts  # stdlib only: tests/unit/test_workload.py checks it
    }


@pytest.mark.parametrize(
    ("library", "owners"),
    [
        ("lightkube", {"k8s/gateway.py"}),
        ("httpx2", {"k8s/gateway.py", "k8s/transport.py"}),
        ("tenacity", {"k8s/transport.py"}),
        ("sqlite_utils", {"store.py"}),
        ("sqlite3", {"store.py"}),
        ("transitions", {"machine.py"}),
        ("object_storage", {"sources/__init__.py", "sources/object_storage.py"}),
        ("dpcharmlibs", {"sources/metastore.py"}),
    ],
)
def test_one_module_owns_each_outside_library(library, owners):
    importers = {name for name, found in modules().items() if library in found}
    assert importers <= owners, f"{library} imported outside {owners}: {importers - owners}"


@pytest.mark.parametrize("layer", ["core", "render"])
def test_models_and_renderers_know_nothing_of_juju_or_the_cluster(layer):
    for name, found in modules().items():
        if name.startswith(f"{layer}/"):
            assert not found & {"ops", "lightkube", "k8s", "store", "hub", "charm"}, name


@pytest.mark.parametrize(
    "module",
    [
        "hub.py",
        "reconciler.py",
        "machine.py",
        "store.py",
        "k8s/policy.py",
        "k8s/gateway.py",
        "k8s/transport.py",
    ],
)
def test_the_pass_knows_no_juju_event(module):
    assert "ops" not in modules()[module]


def test_importing_the_charm_loads_no_kubernetes_client():
    """A hook that sends no request (a follower's update-status) never pays for the client."""
    probe = (
        "import sys, charm; print(sorted(m for m in sys.modules "
        "if m in ('k8s.gateway', 'k8s.transport') "
        "or m.split('.')[0] in {'lightkube', 'httpx2', 'tenacity'}))"
    )
    paths = os.pathsep.join(str(SRC.parent / part) for part in ("src", "lib"))
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": paths},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
