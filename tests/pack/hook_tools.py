"""Stand-ins for Juju's hook tools, for one hook run through the packed charm's `dispatch`.

The packed charm runs as a separate process (the layout's interpreter, ops' `JUJU_*`
environment), so Juju's hook tools must be executables on its PATH: `install(bin_dir, ...)`
writes one small script per tool. Each answers from a JSON state file (config, leadership,
storage) and appends `[tool, args]` to a JSON-lines log, which the test reads for the statuses
the charm set. A tool nobody expected fails loudly, naming itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOOLS = (
    "juju-log",
    "is-leader",
    "config-get",
    "status-set",
    "status-get",
    "storage-list",
    "storage-get",
    "relation-ids",
    "relation-list",
    "application-version-set",
    "goal-state",
    "opened-ports",
)

_SCRIPT = """#!{python} -S
import sys
sys.path.insert(0, {here!r})
import hook_tools
sys.exit(hook_tools.main({tool!r}, sys.argv[1:], {state!r}, {log!r}))
"""


def install(bin_dir: Path, state: dict, log: Path) -> None:
    """Write the tools into `bin_dir`, answering from `state` and logging to `log`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_file = bin_dir / "hook-tools-state.json"
    state_file.write_text(json.dumps(state))
    here = str(Path(__file__).parent)
    for tool in TOOLS:
        script = bin_dir / tool
        script.write_text(
            _SCRIPT.format(
                python=sys.executable, here=here, tool=tool, state=str(state_file), log=str(log)
            )
        )
        script.chmod(0o755)


def calls(log: Path) -> list[tuple[str, list[str]]]:
    """Every tool call of the hook, in order."""
    if not log.exists():
        return []
    return [tuple(json.loads(line)) for line in log.read_text().splitlines()]  # type: ignore[misc]


def _answer(tool: str, args: list[str], state: dict) -> object:
    if tool == "is-leader":
        return state["leader"]
    if tool == "config-get":
        return state["config"]
    if tool == "status-get":
        return {"status": "unknown", "message": "", "status-data": {}}
    if tool == "storage-list":
        return sorted(state["storage"])
    if tool == "storage-get":
        storage_id = args[args.index("-s") + 1]
        storage = {"kind": "filesystem", "location": state["storage"][storage_id]}
        keys = [arg for arg in args[args.index("-s") + 2 :] if not arg.startswith("-")]
        return storage[keys[0]] if keys else storage
    if tool in ("relation-ids", "relation-list", "opened-ports"):
        return []
    if tool == "goal-state":
        return {"units": {state["unit"]: {"status": "active"}}, "relations": {}}
    return None


def main(tool: str, args: list[str], state_file: str, log: str) -> int:
    """Run one tool call: log it, answer it as JSON when asked for output."""
    with open(log, "a") as out:
        out.write(json.dumps([tool, args]) + "\n")
    state = json.loads(Path(state_file).read_text())
    answer = _answer(tool, args, state)
    if tool not in ("juju-log", "status-set", "application-version-set") and answer is None:
        print(f"fake {tool}: unexpected call {args}", file=sys.stderr)
        return 1
    if answer is not None:
        print(json.dumps(answer))
    return 0
