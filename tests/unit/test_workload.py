"""The watcher's charm side (`workload.py`) and the watcher's pure parts (`src/watcher/`)."""

from __future__ import annotations

import ast
import base64
import json
import sys
import threading
from pathlib import Path

import ops
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ops import testing

import watcher
import workload
from core.properties import data_hash as core_data_hash
from core.properties import encode_key
from watcher.filters import (
    HASH_ANNOTATION,
    OWNER_ANNOTATION,
    AccountFilter,
    SecretFilter,
    data_hash,
    live_hash,
)
from watcher.health import STALE_AFTER, Heartbeat, assess, check
from watcher.kube import GoneError, KubeError, StreamError, parse_event
from watcher.loop import Backoff, WatchLoop
from watcher.notify import Debouncer, summarize
from watcher.settings import Settings, SettingsError, endpoint_from_env

OWNER = "00000000-0000-4000-8000-000000000001/spark-integration-hub-k8s"
CONTAINER = "integration-hub"
WATCHER_DIR = Path(watcher.__file__).parent


# -- the watcher is standard library only ------------------------------------------------------


def test_watcher_imports_only_the_standard_library():
    for path in WATCHER_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: use absolute imports"
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "watcher" or top in sys.stdlib_module_names, f"{path.name}: {name}"


def test_notice_key_is_shared():
    assert (
        workload.NOTICE_KEY == watcher.NOTICE_KEY == "canonical.com/spark-integration-hub/changed"
    )


def test_follow_up_file_is_shared():
    from watcher.followup import DEFAULT_FOLLOW_UP

    assert workload.FOLLOW_UP_FILE == DEFAULT_FOLLOW_UP


# -- the duplicated hash ------------------------------------------------------------------------


@given(st.dictionaries(st.text(), st.text()))
def test_watcher_hash_is_core_hash(data):
    assert data_hash(data) == core_data_hash(data)


def _secret(data: dict[str, str], owner: str = OWNER, digest: str | None = None, **meta) -> dict:
    encoded = {encode_key(k): v for k, v in data.items()}
    annotations = {OWNER_ANNOTATION: owner, HASH_ANNOTATION: digest or core_data_hash(encoded)}
    return {
        "kind": "Secret",
        "metadata": {
            "name": "integrator-hub-conf-alice",
            "namespace": "team-a",
            "annotations": annotations,
            **meta,
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in encoded.items()},
    }


def test_live_hash_matches_the_hub_annotation():
    data = {"spark.executorEnv.LOKI_URL": "http://loki:3100", "spark.x": "é ✓"}
    secret = _secret(data)
    assert live_hash(secret) == secret["metadata"]["annotations"][HASH_ANNOTATION]
    assert live_hash({"data": {"k": base64.b64encode(b"\xff").decode()}}) is None
    assert live_hash({"data": {"k": "not base64!"}}) is None
    assert live_hash({}) == core_data_hash({})


# -- filters ------------------------------------------------------------------------------------


def test_accounts_wake_on_added_and_deleted_only():
    accounts = AccountFilter()
    sa = {"metadata": {"name": "alice", "namespace": "team-a"}}
    assert accounts.reason("ADDED", sa) == "account team-a/alice added"
    assert accounts.reason("DELETED", sa) == "account team-a/alice deleted"
    assert accounts.reason("MODIFIED", sa) is None


def test_secrets_filter_ignores_own_consistent_writes_and_other_owners():
    secrets = SecretFilter(OWNER)
    consistent = _secret({"spark.a": "1"})
    assert secrets.reason("ADDED", consistent) is None
    assert secrets.reason("MODIFIED", consistent) is None
    edited = _secret({"spark.a": "1"}, digest="0" * 64)
    assert secrets.reason("MODIFIED", edited) == "secret team-a/integrator-hub-conf-alice edited"
    assert secrets.reason("DELETED", consistent) == (
        "secret team-a/integrator-hub-conf-alice deleted"
    )
    other = _secret({"spark.a": "1"}, owner="another-model/hub")
    for kind in ("ADDED", "MODIFIED", "DELETED"):
        assert secrets.reason(kind, other) is None
    reference_charm = _secret({"spark.a": "1"})
    del reference_charm["metadata"]["annotations"][OWNER_ANNOTATION]
    assert secrets.reason("DELETED", reference_charm) is None


def test_secrets_filter_notices_a_secret_that_lost_our_annotation():
    secrets = SecretFilter(OWNER)
    ours = _secret({"spark.a": "1"})
    secrets.seed(ours)
    stripped = _secret({"spark.a": "1"}, owner="")
    assert secrets.reason("MODIFIED", stripped) == (
        "secret team-a/integrator-hub-conf-alice is no longer ours"
    )
    assert secrets.reason("MODIFIED", stripped) is None
    secrets.seed(ours)
    secrets.reset()
    assert secrets.reason("DELETED", stripped) is None


def test_parse_event():
    assert parse_event(b'{"type":"ADDED","object":{"kind":"X"}}\n')["type"] == "ADDED"
    with pytest.raises(GoneError):
        parse_event(b'{"type":"ERROR","object":{"kind":"Status","code":410}}\n')
    with pytest.raises(KubeError) as error:
        parse_event(b'{"type":"ERROR","object":{"kind":"Status","code":500,"reason":"X"}}\n')
    assert error.value.status == 500
    with pytest.raises(StreamError):
        parse_event(b'{"type":"ADDED","obj')
    with pytest.raises(StreamError):
        parse_event(b"[]\n")


# -- debounce -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_debouncer_sends_the_first_change_at_once_then_one_per_interval():
    clock, sent = FakeClock(), []
    debouncer = Debouncer(1.0, lambda reason: sent.append((clock.now, reason)) or True, clock)
    debouncer.wake("a")
    assert debouncer.step(0)
    assert sent == [(100.0, "a")]
    debouncer.wake("b")
    debouncer.wake("c")
    debouncer.wake("b")
    assert not debouncer.step(0)  # within the interval: held back
    clock.now = 101.0
    assert debouncer.step(0)
    assert sent[-1] == (101.0, "2 changes: b, c")
    clock.now = 105.0
    debouncer.wake("d")
    assert debouncer.step(0)  # after a quiet period: at once again
    assert sent[-1] == (105.0, "d")


def test_debouncer_retries_a_failed_notice():
    clock, calls = FakeClock(), []
    results = iter([False, True])
    debouncer = Debouncer(0.0, lambda reason: calls.append(reason) or next(results), clock)
    debouncer.wake("a")
    assert not debouncer.step(0)
    assert not debouncer.step(0)  # backing off
    clock.now += 0.2
    assert debouncer.step(0)
    assert calls == ["a", "a"]


def test_summarize_is_short():
    assert summarize(["x"]) == "x"
    assert summarize([f"account ns/a{i} added" for i in range(50)]).startswith("50 changes: ")
    assert len(summarize(["y" * 500, "z"])) <= 200


def test_backoff_doubles_to_thirty_seconds_and_resets():
    backoff = Backoff()
    delays = [backoff.next() for _ in range(10)]
    assert delays[:4] == [0.2, 0.4, 0.8, 1.6]
    assert delays[-1] == 30.0
    backoff.reset()
    assert backoff.next() == 0.2


class ScriptedClient:
    """Plays a script of list results and watch outcomes to a WatchLoop."""

    def __init__(self, lists, watches):
        self.lists = iter(lists)
        self.watches = iter(watches)
        self.watched: list[str] = []
        self.loop: WatchLoop | None = None

    def list(self, resource, selector, page_size, visit):
        rv, items = next(self.lists)
        for item in items:
            visit(item)
        return rv

    def watch(self, resource, selector, rv, timeout, on_connected):
        self.watched.append(rv)
        outcome = next(self.watches, None)
        if outcome is None:
            assert self.loop is not None
            self.loop.stop()
            return
        if isinstance(outcome, Exception):
            raise outcome
        on_connected()
        yield from outcome


def _event(kind: str, rv: str, name: str = "a") -> dict:
    return {
        "type": kind,
        "object": {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}},
    }


def test_watch_loop_resumes_relists_on_gone_and_backs_off():
    client = ScriptedClient(
        lists=[("5", []), ("20", [])],
        watches=[
            [_event("BOOKMARK", "7"), _event("ADDED", "8"), _event("MODIFIED", "9")],
            GoneError(410, "Expired"),
            KubeError(500, "InternalError"),
            OSError("connection reset"),
        ],
    )
    wakes: list[str] = []
    listed: list[str] = []
    loop = WatchLoop(
        client, AccountFilter(), wakes.append, listed.append, backoff=Backoff(0.001, 0.002)
    )
    client.loop = loop
    loop.run()
    assert client.watched == ["5", "9", "20", "20", "20"]
    assert wakes == ["account ns/a added", "accounts re-listed after 410 Gone"]
    assert listed == ["accounts"]
    assert not loop.connected


# -- health -------------------------------------------------------------------------------------


def test_heartbeat_assessment(tmp_path):
    now = 1_000_000.0
    assert assess({"started": now - 5, "connected": None}, now) is None  # grace period
    assert assess({"started": now - 500, "connected": now - 3}, now) is None
    stale = assess({"connected": now - STALE_AFTER - 15, "watches": {"accounts": "x"}}, now)
    assert stale == "watches last connected 75s ago (accounts: x)"
    assert "never connected" in (assess({"started": now - 90, "connected": None}, now) or "")
    assert "no heartbeat" in (check(tmp_path / "missing") or "")
    (tmp_path / "bad").write_text("{")
    assert "unreadable" in (check(tmp_path / "bad") or "")


def test_heartbeat_writes_atomically_and_rate_limits(tmp_path):
    clock = FakeClock()
    beat = Heartbeat(tmp_path / "hb", clock)
    beat.beat(False, {"accounts": "listing"})
    first = json.loads((tmp_path / "hb").read_text())
    assert first["connected"] is None and first["watches"] == {"accounts": "listing"}
    clock.now += 1
    beat.beat(True, {"accounts": "watching"})  # state changed: written at once
    assert json.loads((tmp_path / "hb").read_text())["connected"] == clock.now
    clock.now += 1
    beat.beat(True, {"accounts": "watching"})  # unchanged and recent: not rewritten
    assert json.loads((tmp_path / "hb").read_text())["connected"] == clock.now - 1
    assert [p.name for p in tmp_path.iterdir()] == ["hb"]


# -- settings -----------------------------------------------------------------------------------


def test_settings_from_env(tmp_path):
    settings = Settings.from_env(
        {
            "HUB_WATCHER_OWNER": OWNER,
            "HUB_WATCHER_SERVER": "http://127.0.0.1:8080/prefix/",
            "HUB_WATCHER_TOKEN": "t",
            "HUB_WATCHER_DEBOUNCE": "0.05",
        }
    )
    assert str(settings.endpoint) == "http://127.0.0.1:8080/prefix"
    assert settings.endpoint.bearer() == "t"
    assert settings.debounce == 0.05
    assert settings.pebble == "/charm/bin/pebble"
    with pytest.raises(SettingsError, match="HUB_WATCHER_OWNER"):
        Settings.from_env({"HUB_WATCHER_SERVER": "http://x"})
    with pytest.raises(SettingsError, match="neither"):
        Settings.from_env({"HUB_WATCHER_OWNER": OWNER})
    with pytest.raises(SettingsError):
        Settings.from_env({"HUB_WATCHER_OWNER": OWNER, "HUB_WATCHER_SERVER": "ftp://x"})


def test_in_cluster_endpoint_rereads_its_token(tmp_path):
    (tmp_path / "token").write_text("one\n")
    endpoint = endpoint_from_env(
        {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, tmp_path
    )
    assert str(endpoint) == "https://[fd00::1]:6443"
    assert endpoint.ca_file == tmp_path / "ca.crt"
    assert endpoint.bearer() == "one"
    (tmp_path / "token").write_text("two")
    assert endpoint.bearer() == "two"


# -- the layer ----------------------------------------------------------------------------------


def test_watcher_layer():
    layer = workload.watcher_layer(OWNER, {"HUB_WATCHER_HEARTBEAT": "/run/hb", "X": "1"})
    service = layer["services"]["hub-watcher"]
    assert service == {
        "override": "replace",
        "summary": service["summary"],
        "command": "python3 -m watcher",
        "startup": "enabled",
        "environment": {
            "HUB_WATCHER_HEARTBEAT": "/run/hb",
            "X": "1",
            "PYTHONPATH": "/opt/hub-watcher",
            "HUB_WATCHER_OWNER": OWNER,
        },
        "on-check-failure": {"hub-watcher-alive": "restart"},
    }
    assert layer["checks"]["hub-watcher-alive"] == {
        "override": "replace",
        "level": "alive",
        "period": "30s",
        "threshold": 3,
        "exec": {
            "command": "python3 -m watcher --check",
            "environment": {"PYTHONPATH": "/opt/hub-watcher", "HUB_WATCHER_HEARTBEAT": "/run/hb"},
        },
    }
    ops.pebble.Layer(layer)  # Pebble's own model accepts it


# -- install and health through ops.testing -----------------------------------------------------


class WatcherCharm(ops.CharmBase):
    """Installs the watcher when the workload is ready and reports its health."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on[CONTAINER].pebble_ready, self._on_ready)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_ready(self, event: ops.PebbleReadyEvent):
        workload.install_watcher(event.workload, OWNER)

    def _on_collect_status(self, event: ops.CollectStatusEvent):
        health = workload.watcher_health(self.unit.get_container(CONTAINER))
        event.add_status(ops.WaitingStatus(health) if health else ops.ActiveStatus())


META = {"name": "hub-test", "containers": {CONTAINER: {}}}


@pytest.fixture
def ctx() -> testing.Context:
    return testing.Context(WatcherCharm, meta=META)


def test_install_pushes_every_module_and_starts_the_service(ctx):
    container = testing.Container(CONTAINER, can_connect=True)
    out = ctx.run(ctx.on.pebble_ready(container), testing.State(containers={container}))
    after = out.get_container(CONTAINER)
    root = after.get_filesystem(ctx)
    sources = sorted(WATCHER_DIR.glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "__main__.py"}
    for source in sources:
        pushed = root / "opt/hub-watcher/watcher" / source.name
        assert pushed.read_bytes() == source.read_bytes()
    plan = after.plan.to_dict()
    environment = plan["services"]["hub-watcher"]["environment"]
    assert environment["HUB_WATCHER_OWNER"] == OWNER
    assert environment["PYTHONPATH"] == "/opt/hub-watcher"
    assert len(environment["HUB_WATCHER_CODE"]) == 16
    assert plan["checks"]["hub-watcher-alive"]["exec"]["command"] == "python3 -m watcher --check"
    assert after.service_statuses["hub-watcher"] == ops.pebble.ServiceStatus.ACTIVE
    assert out.unit_status == testing.ActiveStatus()


def test_install_is_idempotent_and_a_code_change_changes_the_layer(ctx, tmp_path, monkeypatch):
    container = testing.Container(CONTAINER, can_connect=True)
    once = ctx.run(ctx.on.pebble_ready(container), testing.State(containers={container}))
    again = ctx.run(ctx.on.pebble_ready(once.get_container(CONTAINER)), once)
    assert again.get_container(CONTAINER).plan == once.get_container(CONTAINER).plan
    changed = tmp_path / "watcher"
    changed.mkdir()
    for source in WATCHER_DIR.glob("*.py"):
        (changed / source.name).write_text(source.read_text() + "\n# v2\n")
    monkeypatch.setattr(workload, "SOURCE_DIR", changed)
    upgraded = ctx.run(ctx.on.pebble_ready(again.get_container(CONTAINER)), again)
    env = upgraded.get_container(CONTAINER).plan.services["hub-watcher"].environment
    assert (
        env["HUB_WATCHER_CODE"]
        != once.get_container(CONTAINER)
        .plan.services["hub-watcher"]
        .environment["HUB_WATCHER_CODE"]
    )


def _installed(**kwargs) -> testing.Container:
    layer = ops.pebble.Layer(workload.watcher_layer(OWNER, {}))
    return testing.Container(CONTAINER, can_connect=True, layers={"hub-watcher": layer}, **kwargs)


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (
            _installed(
                service_statuses={"hub-watcher": ops.pebble.ServiceStatus.ACTIVE},
                check_infos={testing.CheckInfo("hub-watcher-alive", level="alive")},
            ),
            None,
        ),
        (
            _installed(
                service_statuses={"hub-watcher": ops.pebble.ServiceStatus.ACTIVE},
                check_infos={
                    testing.CheckInfo(
                        "hub-watcher-alive", level="alive", failures=1, successes=None
                    )
                },
            ),
            None,  # a single failure, still up: not reported
        ),
        (
            _installed(
                service_statuses={"hub-watcher": ops.pebble.ServiceStatus.ACTIVE},
                check_infos={
                    testing.CheckInfo(
                        "hub-watcher-alive",
                        level="alive",
                        status=ops.pebble.CheckStatus.DOWN,
                        failures=3,
                    )
                },
            ),
            "watcher check failing: 3 consecutive failures",
        ),
        (
            _installed(service_statuses={"hub-watcher": ops.pebble.ServiceStatus.ERROR}),
            "watcher not running",
        ),
        (testing.Container(CONTAINER, can_connect=True), "watcher not running"),
        (
            testing.Container(CONTAINER, can_connect=False),
            "watcher unknown: workload container unreachable",
        ),
    ],
    ids=["healthy", "one-failure", "check-down", "service-error", "not-installed", "no-pebble"],
)
def test_health_reporting(ctx, container, expected):
    out = ctx.run(ctx.on.update_status(), testing.State(containers={container}))
    assert out.unit_status == (
        testing.WaitingStatus(expected) if expected else testing.ActiveStatus()
    )


class _FakePebble:
    def __init__(self, log: list[str]):
        self.log = log

    def get_change(self, change_id):
        return ops.pebble.Change.from_dict(
            {
                "id": change_id,
                "kind": "recover-check",
                "summary": "",
                "status": "Doing",
                "ready": False,
                "spawn-time": "2026-01-01T00:00:00Z",
                "tasks": [
                    {
                        "id": "1",
                        "kind": "recover-check",
                        "summary": "",
                        "status": "Doing",
                        "log": self.log,
                        "progress": {"label": "", "done": 0, "total": 1},
                        "spawn-time": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        )


class _FakeContainer:
    def __init__(self, log: list[str]):
        self.pebble = _FakePebble(log)

    def get_services(self, *names):
        info = ops.pebble.ServiceInfo(
            "hub-watcher", ops.pebble.ServiceStartup.ENABLED, ops.pebble.ServiceStatus.ACTIVE
        )
        return {"hub-watcher": info}

    def get_checks(self, *names):
        info = ops.pebble.CheckInfo(
            "hub-watcher-alive", "alive", ops.pebble.CheckStatus.DOWN, None, 3, 3, "7"
        )
        return {"hub-watcher-alive": info}


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (
            [
                "2026-01-01T00:00:00Z ERROR exit status 1; hub-watcher unhealthy: watches last "
                "connected 75s ago (accounts: reconnecting after HTTP 403 Forbidden)"
            ],
            "watcher check failing: watches last connected 75s ago "
            "(accounts: reconnecting after HTTP 403 Forbidden)",
        ),
        (
            ["2026-01-01T00:00:00Z ERROR check timed out after 3s"],
            "watcher check failing: check timed out after 3s",
        ),
        ([], "watcher check failing: 3 consecutive failures"),
    ],
)
def test_health_quotes_the_checks_reason(log, expected):
    assert workload.watcher_health(_FakeContainer(log)) == expected  # type: ignore[arg-type]


# Private attributes of threading.Thread across the supported Pythons (3.10 to 3.13): 3.13 added
# `_handle` (the OS thread handle), which a subclass method of that name breaks at `start()`.
_THREAD_PRIVATE_NAMES = {
    "_handle",
    "_os_thread_handle",
    "_started",
    "_is_stopped",
    "_tstate_lock",
    "_target",
    "_args",
    "_kwargs",
    "_name",
    "_daemonic",
    "_ident",
    "_native_id",
    "_stderr",
    "_invoke_excepthook",
    "_initialized",
    "_context",
    "_bootstrap",
    "_bootstrap_inner",
    "_stop",
    "_wait_for_tstate_lock",
    "_set_ident",
    "_set_native_id",
    "_set_tstate_lock",
    "_delete",
    "_reset_internal_locks",
    "_after_fork",
    "_set_os_name",
}


def test_watch_loop_shadows_no_private_thread_attribute():
    own = {name for name in vars(WatchLoop) if name.startswith("_") and not name.endswith("__")}
    clashes = own & (_THREAD_PRIVATE_NAMES | {n for n in dir(threading.Thread) if n[:1] == "_"})
    assert not clashes, f"WatchLoop overrides threading.Thread internals: {sorted(clashes)}"
