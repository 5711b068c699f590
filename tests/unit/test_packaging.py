"""What a real deploy needs from the files charmcraft packs: modes, metadata, locks, ignores."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
CHARMCRAFT = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
ENTRYPOINTS = ["src/charm.py", "tests/integration/requirer-charm/src/charm.py"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


@pytest.mark.parametrize("entrypoint", ENTRYPOINTS)
def test_charm_entrypoints_are_executable(entrypoint):
    """The generated `dispatch` runs `exec ./src/charm.py`: mode 100755, in git and on disk."""
    assert os.access(ROOT / entrypoint, os.X_OK)
    assert (ROOT / entrypoint).read_text().startswith("#!/usr/bin/env python3\n")
    staged = subprocess.run(
        ["git", "ls-files", "--stage", entrypoint], cwd=ROOT, capture_output=True, text=True
    ).stdout
    if staged:  # in a git checkout (a source tarball has no index)
        assert staged.startswith("100755 "), staged


def test_assumes_the_juju_floor_of_custom_notices():
    assert CHARMCRAFT["assumes"] == ["k8s-api", "juju >= 3.4"]


def test_platforms_are_those_of_the_pinned_image():
    assert list(CHARMCRAFT["platforms"]) == ["amd64"]
    source = CHARMCRAFT["resources"]["integration-hub-image"]["upstream-source"]
    assert re.fullmatch(r"ghcr\.io/canonical/spark-integration-hub@sha256:[0-9a-f]{64}", source)


def test_no_link_points_at_another_project():
    assert (
        "canonical/spark-integration-hub-k8s-operator"
        not in (ROOT / "charmcraft.yaml").read_text()
    )


def test_the_charm_is_built_strictly_from_the_runtime_lock():
    part = CHARMCRAFT["parts"]["charm"]
    assert part["plugin"] == "charm"
    assert part["charm-strict-dependencies"] is True
    assert part["charm-requirements"] == ["requirements.txt"]


def test_one_lock_source_the_dev_lock_holds_every_runtime_pin():
    runtime = _pins(ROOT / "requirements.txt")
    development = _pins(ROOT / "requirements.lock")
    assert runtime
    assert {name: development.get(name) for name in runtime} == runtime


def test_jujuignore_keeps_development_files_out_of_the_charm():
    ignored = set((ROOT / ".jujuignore").read_text().split())
    assert {"/tests", "/docs", "/.ci", "/.tox", "/.venv", "/requirements.lock"} <= ignored
    assert not ignored & {"/src", "/lib", "/requirements.txt", "/charmcraft.yaml"}


def test_every_locked_runtime_package_may_come_as_a_wheel():
    """Strict mode builds every package not listed here from source (`--no-binary`)."""
    binaries = CHARMCRAFT["parts"]["charm"]["charm-binary-python-packages"]
    assert sorted(binaries) == sorted(_pins(ROOT / "requirements.txt"))


REQUIRER = ROOT / "tests" / "integration" / "requirer-charm"


def test_the_requirer_lib_is_copied_in_at_pack_time_never_linked_or_committed():
    lib = REQUIRER / "lib"
    assert not any(path.is_symlink() for path in lib.rglob("*")) if lib.exists() else True
    tracked = subprocess.run(
        ["git", "ls-files", str(lib.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert tracked == ""
    makefile = (ROOT / "Makefile").read_text()
    assert "cp -r lib/charms/spark_integration_hub_k8s $(REQUIRER)/lib/charms/" in makefile


def test_every_integration_wait_fails_fast_on_an_error():
    import ast

    for path in (ROOT / "tests" / "integration").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "wait"
            ):
                keywords = {keyword.arg for keyword in node.keywords}
                assert "error" in keywords, f"{path.name}:{node.lineno}: juju.wait without error="


def test_tox_integration_passes_the_charm_paths_through():
    import configparser

    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    passed = tox["testenv:integration"]["pass_env"].split()
    assert {"CHARM_PATH", "REQUIRER_CHARM_PATH", "KEEP_MODEL", "KUBECONFIG"} <= set(passed) | set(
        tox["testenv"]["pass_env"].split()
    )


UPSTREAM_LIBID = "55536ebf65b34d6a89e39a67472f85da"
"""The Charmhub library `charms.spark_integration_hub_k8s.v0.spark_service_account`."""


def test_the_library_cannot_be_mistaken_for_the_upstream_one():
    from charms.spark_integration_hub_k8s.v0 import hub_service_account as lib

    assert lib.LIBID != UPSTREAM_LIBID
    assert re.fullmatch(r"[0-9a-f]{32}", lib.LIBID)
    assert not (ROOT / "lib/charms/spark_integration_hub_k8s/v0/spark_service_account.py").exists()
    assert "charmcraft fetch-lib charms.spark_integration_hub_k8s" not in (lib.__doc__ or "")
    reference = (ROOT / "docs/reference/spark-service-account.md").read_text()
    assert UPSTREAM_LIBID in reference and lib.LIBID in reference
