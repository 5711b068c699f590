"""Build the charm as charmcraft 4's `charm` plugin does, pack it, and analyse it.

`charmcraft pack` itself needs an Ubuntu build environment (LXD or Multipass); this runs the
same steps on any Linux machine with charmcraft installed from PyPI:

1. charmcraft's own project model (`CharmcraftProject`) validates `charmcraft.yaml`;
2. charmcraft's `charm` plugin computes the build command from the part's properties, and that
   command runs `charm_builder.py` (venv, strict `pip install --no-deps`, `pip check`,
   `dispatch`, `.jujuignore`) on a copy of the source, with the base's Python (ubuntu@24.04:
   3.12) as `python3`, and with pip refused every source build (`PIP_ONLY_BINARY=:all:`);
3. charmcraft's metadata and manifest models write `metadata.yaml`, `config.yaml`,
   `actions.yaml` and `manifest.yaml` beside it, and the layout is zipped into a `.charm`;
4. `charmcraft analyse` lints the `.charm`; any `errors` result fails the build. (Its `pydeps`
   linter answers `fatal` for every `charm`-plugin charm, this one included: it looks for
   `venv/lib/python*/site-packages`, while charmcraft 4.5's own `charm_builder.py` copies
   site-packages flat into `venv/`, in `charmcraft pack` as here.)

When the base's Python is not installed, the wheels for it are only downloaded (proving that
every pinned package has a 3.12 wheel) and the layout is built with the running `python3`.

Usage: `python -m tests.pack.build OUT_DIR` (the `pack` tox environment); prints the `.charm`.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE_PYTHON = "3.12"
"""The Python of the charm's base (ubuntu@24.04)."""


def base_python() -> Path | None:
    """The base's Python interpreter on this machine, if one is installed (PATH or pyenv)."""
    candidates = [shutil.which(f"python{BASE_PYTHON}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv_root.glob(f"versions/{BASE_PYTHON}.*/bin/python{BASE_PYTHON}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [str(candidate), "-c", "import sys, venv, ensurepip; print(sys.executable)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return Path(probe.stdout.strip())
    return None


def source_tree(destination: Path) -> None:
    """Copy the project's files (tracked or not ignored) as the part's build directory."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file() or source.is_symlink():
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def plugin_command(project_data: dict, work: Path) -> str:
    """The build command charmcraft's `charm` plugin gives craft-parts for our part."""
    from charmcraft.parts.plugins import CharmPlugin, CharmPluginProperties
    from craft_parts import Part, infos
    from craft_parts.dirs import ProjectDirs

    part_data = dict(project_data["parts"]["charm"])
    properties = CharmPluginProperties.unmarshal(part_data)
    common = {key: value for key, value in part_data.items() if not key.startswith("charm-")}
    project_info = infos.ProjectInfo(
        application_name="charmcraft",
        cache_dir=work / "cache",
        project_dirs=ProjectDirs(work_dir=work),
    )
    part = Part("charm", common, project_dirs=project_info.dirs, plugin_properties=properties)
    plugin = CharmPlugin(properties=properties, part_info=infos.PartInfo(project_info, part))
    (command,) = plugin.get_build_commands()
    return command


def build_layout(work: Path, python: Path | None) -> Path:
    """Run the plugin's build step; the part's install directory (the charm's layout)."""
    import charmcraft.parts
    from charmcraft.models.project import CharmcraftProject

    charmcraft.parts.setup_parts()
    project_data = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
    CharmcraftProject.unmarshal(project_data)  # charmcraft's own validation
    shims = work / "python-shims"
    shims.mkdir(parents=True)
    interpreter = python or Path(sys.executable)
    (shims / "python3").symlink_to(interpreter)
    os.environ["PATH"] = f"{shims}{os.pathsep}{os.environ['PATH']}"
    command = plugin_command(project_data, work)
    # Wheels only: the plugin's own `env -i` environment, plus a refusal of source builds.
    command = command.replace("env -i ", "env -i PIP_ONLY_BINARY=:all: ", 1)
    build_dir = work / "parts" / "charm" / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    source_tree(build_dir)
    print(f"charm plugin build step with python3 = {interpreter}", flush=True)
    subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=build_dir, check=True)
    return work / "parts" / "charm" / "install"


def download_base_wheels(work: Path) -> None:
    """Prove that every pinned package has a wheel for the base's Python (no 3.12 here)."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--python-version", BASE_PYTHON,
            "--implementation", "cp", "--platform", "manylinux_2_39_x86_64",
            "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64",
            "--dest", str(work / "wheels"), "--requirement", str(ROOT / "requirements.txt"),
        ],
        check=True,
    )  # fmt: skip


def write_metadata(layout: Path, project_data: dict, python: Path | None) -> None:
    """The files `charmcraft pack` writes beside the built charm, from charmcraft's models."""
    import charmcraft
    from charmcraft import models
    from charmcraft.models.manifest import Manifest
    from charmcraft.models.metadata import CharmMetadata
    from charmcraft.models.project import CharmcraftProject

    project = CharmcraftProject.unmarshal(project_data)
    metadata = CharmMetadata.from_charm(project).marshal()  # pyright: ignore[reportArgumentType]
    (layout / "metadata.yaml").write_text(yaml.safe_dump(metadata, sort_keys=True))
    for key in ("config", "actions"):
        if project_data.get(key):
            (layout / f"{key}.yaml").write_text(yaml.safe_dump(project_data[key], sort_keys=True))
    architectures = sorted(project_data["platforms"])
    manifest = Manifest(
        charmcraft_version=charmcraft.__version__,
        charmcraft_started_at=datetime.datetime.now(datetime.UTC).isoformat(),
        bases=[models.Base.from_str_and_arch(project_data["base"], architectures)],
    )
    (layout / "manifest.yaml").write_text(
        yaml.safe_dump(manifest.marshal(), sort_keys=False)
    )  # fmt: skip
    if python is None:
        (layout / "BUILT-WITH").write_text(f"python {sys.version.split()[0]}\n")


def zip_layout(layout: Path, charm: Path) -> None:
    """Zip the layout as `charmcraft pack` does, keeping every file's mode (and symlinks)."""
    with zipfile.ZipFile(charm, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(layout.rglob("*")):
            name = str(path.relative_to(layout))
            if path.is_symlink():
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o120777 << 16
                archive.writestr(info, os.readlink(path))
            elif path.is_file():
                archive.write(path, name)


def analyse(charm: Path) -> list[dict]:
    """`charmcraft analyse` on the packed charm; its results."""
    out = subprocess.run(
        ["charmcraft", "analyse", "--format=json", str(charm)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise SystemExit(f"charmcraft analyse failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main(out_dir: Path) -> Path:
    """Build, pack and analyse; the path of the `.charm`."""
    project_data = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="charm-build-", dir=out_dir))
    python = base_python()
    if python is None:
        print(f"no python{BASE_PYTHON} here: downloading its wheels only", flush=True)
        download_base_wheels(work)
    layout = build_layout(work, python)
    write_metadata(layout, project_data, python)
    charm = out_dir / f"{project_data['name']}_amd64.charm"
    zip_layout(layout, charm)
    results = analyse(charm)
    for result in results:
        print(f"analyse: {result['name']}: {result['result']}")
    errors = [result for result in results if result["result"] == "errors"]
    if errors:
        raise SystemExit(f"charmcraft analyse reports errors: {errors}")
    shutil.rmtree(work, ignore_errors=True)
    print(charm)
    return charm


if __name__ == "__main__":
    main(Path(sys.argv[1]))
