"""The charm's side of the watcher: install it in the workload container, and read its health.

The watcher (`src/watcher/`, standard library only) is pushed into the workload container under
`/opt/hub-watcher/watcher/` and run by Pebble as the service `hub-watcher`, with an `alive`
check (`hub-watcher-alive`) that restarts it when its watches stay disconnected. It wakes the
charm with a Pebble custom notice whose key is `NOTICE_KEY`. The workload image's own service
(`IMAGE_SERVICE`, the rock's `monitor_sa` loop, which deletes and recreates every hub Secret) is
replaced by a disabled no-op, so the hub is the only writer. See `docs/explanation/watcher.md`.

It also owns the Pebble log targets that forward the workload's own logs (the watcher's) to
every related Loki unit (`sync_log_targets`): one `loki` target per push URL, named
`LOG_TARGET_PREFIX<n>`; a target whose Loki is gone is kept but forwards nothing
(`services: [-all]`), because Pebble cannot delete a target from a layer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import ops

NOTICE_KEY = "canonical.com/spark-integration-hub/changed"
"""The key of the watcher's custom notice (equal to `watcher.NOTICE_KEY`, a unit test checks)."""

SERVICE = "hub-watcher"
CHECK = "hub-watcher-alive"
LAYER = "hub-watcher"
INSTALL_DIR = "/opt/hub-watcher"
SOURCE_DIR = Path(__file__).parent / "watcher"
CODE_VERSION_ENV = "HUB_WATCHER_CODE"
"""Set to a digest of the pushed code, so a new watcher version changes the layer and restarts."""

IMAGE_SERVICE = "integration-hub"
"""The service the workload image (spark-integration-hub rock) ships: never run beside ours."""

_CHECK_ENV_KEYS = ("HUB_WATCHER_HEARTBEAT",)
MAX_DETAIL = 120
CHECK_REASON_PREFIX = "hub-watcher unhealthy:"
"""How `python3 -m watcher --check` starts its reason (see `watcher.service.run_check`)."""


def watcher_layer(owner_annotation: str, env: Mapping[str, str]) -> ops.pebble.LayerDict:
    """The Pebble layer of the watcher service and its health check.

    Args:
        owner_annotation: this hub's owner annotation (`<model-uuid>/<app>`): the watcher
            ignores every Secret that does not carry it.
        env: extra environment for the service (e.g. `HUB_WATCHER_SERVER` for a demo,
            `HUB_WATCHER_DEBOUNCE`); `PYTHONPATH` and `HUB_WATCHER_OWNER` are always set.

    Returns:
        The layer.
    """
    environment = {**env, "PYTHONPATH": INSTALL_DIR, "HUB_WATCHER_OWNER": owner_annotation}
    check_environment = {"PYTHONPATH": INSTALL_DIR}
    check_environment.update({key: env[key] for key in _CHECK_ENV_KEYS if key in env})
    service: ops.pebble.ServiceDict = {
        "override": "replace",
        "summary": "Watches Spark service accounts and the hub's Secrets; notifies the charm",
        "command": "python3 -m watcher",
        "startup": "enabled",
        "environment": environment,
        "on-check-failure": {CHECK: "restart"},
    }
    check: ops.pebble.CheckDict = {
        "override": "replace",
        "level": "alive",
        "period": "30s",
        "threshold": 3,
        "exec": {"command": "python3 -m watcher --check", "environment": check_environment},
    }
    # Replaces the image's own writer with a disabled no-op: `replan` never starts it, and a
    # manual `pebble start` runs `true` once.
    image_service: ops.pebble.ServiceDict = {
        "override": "replace",
        "summary": "Disabled: the charm's hub-watcher replaces the image's monitor",
        "command": "true",
        "startup": "disabled",
        "on-success": "ignore",
        "on-failure": "ignore",
    }
    return {
        "summary": "Spark Integration Hub watcher",
        "services": {SERVICE: service, IMAGE_SERVICE: image_service},
        "checks": {CHECK: check},
    }


LOG_LAYER = "hub-log-forwarding"
LOG_TARGET_PREFIX = "hub-loki-"
MAX_LOG_TARGETS = 16
"""At most this many Loki units receive the workload's logs (the first, in relation order)."""


def log_targets_layer(
    urls: Sequence[str], labels: Mapping[str, str], existing: Mapping[str, str]
) -> ops.pebble.LayerDict:
    """The layer forwarding every service's logs to each of `urls` (at most `MAX_LOG_TARGETS`).

    Args:
        urls: Loki push URLs, in the order they were read.
        labels: labels every log line carries (the Juju topology).
        existing: our targets in the current plan, name → location: those no longer wanted are
            switched off (`services: [-all]`).

    Returns:
        The layer (empty `log-targets` when there is nothing to forward or switch off).
    """
    targets: dict[str, ops.pebble.LogTargetDict] = {}
    for number, url in enumerate(urls[:MAX_LOG_TARGETS]):
        targets[f"{LOG_TARGET_PREFIX}{number}"] = {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": ["all"],
            "labels": dict(labels),
        }
    for name, location in existing.items():
        if name not in targets:
            targets[name] = {
                "override": "replace",
                "type": "loki",
                "location": location,
                "services": ["-all"],
            }
    return {"summary": "Spark Integration Hub: workload logs to Loki", "log-targets": targets}


def sync_log_targets(
    container: ops.Container, urls: Sequence[str], labels: Mapping[str, str]
) -> None:
    """Make Pebble forward the workload's logs to exactly `urls` (no-op when unchanged).

    Raises:
        ops.pebble.ConnectionError: when the container's Pebble cannot be reached.
        ops.pebble.APIError: when Pebble refuses the layer.
    """
    plan = container.get_plan().log_targets
    existing = {
        name: target.location
        for name, target in plan.items()
        if name.startswith(LOG_TARGET_PREFIX) and target.location
    }
    layer = log_targets_layer(urls, labels, existing)
    targets = layer.get("log-targets", {})
    if all(_same_target(plan.get(name), target) for name, target in targets.items()):
        return
    container.add_layer(LOG_LAYER, layer, combine=True)


def _same_target(current: ops.pebble.LogTarget | None, wanted: Mapping[str, object]) -> bool:
    """Whether the plan's target already is what `wanted` (a layer's target) asks for."""
    if current is None:
        return False
    have = current.to_dict()
    return all(have.get(key) == value for key, value in wanted.items() if key != "override")


def watcher_sources() -> list[Path]:
    """The watcher's files, as shipped in the charm (every `.py` of `src/watcher`)."""
    return sorted(SOURCE_DIR.glob("*.py"))


def code_digest(sources: list[Path]) -> str:
    """A short digest of the watcher's code (names and contents)."""
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def install_watcher(
    container: ops.Container,
    owner_annotation: str,
    env: Mapping[str, str] | None = None,
) -> None:
    """Push the watcher into the workload container, add its layer and replan.

    Idempotent: the layer only changes (and Pebble only restarts the service) when the owner,
    `env` or the watcher's code changed.

    Args:
        container: the workload container (must be reachable).
        owner_annotation: this hub's owner annotation (`<model-uuid>/<app>`).
        env: extra environment for the service (see `watcher_layer`).

    Raises:
        ops.pebble.ConnectionError: when the container's Pebble cannot be reached.
        ops.pebble.PathError, ops.pebble.ChangeError: when a push or the replan fails.
    """
    sources = watcher_sources()
    for path in sources:
        container.push(f"{INSTALL_DIR}/watcher/{path.name}", path.read_bytes(), make_dirs=True)
    environment = {**(env or {}), CODE_VERSION_ENV: code_digest(sources)}
    container.add_layer(LAYER, watcher_layer(owner_annotation, environment), combine=True)
    running_image_service = container.get_services(IMAGE_SERVICE).get(IMAGE_SERVICE)
    if running_image_service is not None and running_image_service.is_running():
        container.stop(IMAGE_SERVICE)
    container.replan()


def watcher_health(container: ops.Container) -> str | None:
    """The watcher's health for the unit status: None when healthy, else a short message."""
    try:
        services = container.get_services(SERVICE)
        checks = container.get_checks(CHECK)
    except ops.pebble.ConnectionError:
        return "watcher unknown: workload container unreachable"
    except ops.pebble.APIError as error:
        return f"watcher unknown: {error.message}"
    service = services.get(SERVICE)
    if service is None or not service.is_running():
        return "watcher not running"
    check = checks.get(CHECK)
    if check is None or check.status != ops.pebble.CheckStatus.DOWN:
        return None
    detail = _last_check_error(container, check.change_id)
    return f"watcher check failing: {detail or f'{check.failures} consecutive failures'}"


def _last_check_error(container: ops.Container, change_id: str | None) -> str | None:
    """The last error the check logged (its `--check` reason), best effort."""
    if not change_id:
        return None
    try:
        change = container.pebble.get_change(ops.pebble.ChangeID(change_id))
    except (ops.pebble.APIError, ops.pebble.ConnectionError):
        return None
    lines = [line for task in change.tasks for line in task.log]
    if not lines:
        return None
    # Pebble logs "<time> ERROR exit status 1; <the check's output>": keep the `--check` reason.
    message = lines[-1].split(" ", 2)[-1].strip()
    message = next(iter(message.rpartition(CHECK_REASON_PREFIX)[2].strip().splitlines()), "")
    if not message:
        return None
    return message if len(message) <= MAX_DETAIL else message[: MAX_DETAIL - 3] + "..."


FOLLOW_UP_FILE = "/tmp/hub-follow-up.json"
"""The follow-up request the watcher reads (equal to `watcher.followup.DEFAULT_FOLLOW_UP`)."""
FOLLOW_UP_AFTER = 5.0
"""Seconds after a cut-short pass that the watcher wakes the charm for the next one."""


def request_follow_up(
    container: ops.Container, reason: str, after: float = FOLLOW_UP_AFTER
) -> None:
    """Ask the watcher for a notice `after` seconds from now (a pass did not converge).

    Raises:
        ops.pebble.Error: when the push fails (the next `update-status` runs a pass anyway).
    """
    body = json.dumps({"after": after, "reason": reason[:MAX_DETAIL]})
    container.push(FOLLOW_UP_FILE, body, make_dirs=True)


def cancel_follow_up(container: ops.Container) -> None:
    """Withdraw the follow-up request (the hub converged); a missing request is not an error.

    Raises:
        ops.pebble.Error: when Pebble cannot remove it.
    """
    try:
        container.remove_path(FOLLOW_UP_FILE)
    except ops.pebble.PathError as error:
        if error.kind != "not-found":
            raise
