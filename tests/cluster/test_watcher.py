"""The watcher as a real process (`python -S -m watcher`) against the test API server.

`pebble` is a fake that appends the time and its arguments to a file, so every test reads the
notices the charm would get. "No notice" is proved with a sentinel: a later event on the same
watch stream that must notify; once its notice is in, every earlier event has been handled.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import time

import pytest

from core.cluster import HASH_ANNOTATION, OWNER_ANNOTATION
from core.properties import data_hash
from tests.cluster.helpers import OWNER, SPARK8T, add_account, make_hub, options, run
from tests.cluster.watcher_process import Notice
from tests.kube_server import Fault, KubeServer
from tests.kube_server.watch import crafted_event, inject_line

NOTICE_KEY = "canonical.com/spark-integration-hub/changed"
OTHER_OWNER = "11111111-1111-4111-8111-111111111111/another-hub"


def account(server: KubeServer, name: str, namespace: str = "team-a", **labels: str) -> dict:
    return add_account(server, namespace, name, {**SPARK8T, **labels})


def hub_secret(
    data: dict[str, str],
    name: str = "alice",
    owner: str = OWNER.annotation,
    digest: str | None = None,
    namespace: str = "team-a",
) -> dict:
    """A hub Secret as the hub writes it: `data` and its hash annotation agree."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"integrator-hub-conf-{name}",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
            "annotations": {
                OWNER_ANNOTATION: owner,
                HASH_ANNOTATION: digest or data_hash(data),
            },
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def mentions(notices: list[Notice], text: str) -> list[Notice]:
    return [n for n in notices if text in n.reason]


# -- accounts -----------------------------------------------------------------------------------


def test_new_account_latency(kube_server, start_watcher):
    watcher = start_watcher()
    time.sleep(0.1)  # let the debounce interval of the start-up notice pass
    latencies = []
    for number in range(20):
        before = len(watcher.notices())
        created = time.time()
        account(kube_server, f"user-{number}")
        notice = watcher.wait_mentioning(f"team-a/user-{number} added", after=before)
        latencies.append(notice.time - created)
        time.sleep(0.1)  # past the debounce interval: each account is a "first" event
    median = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"\nwatcher detection latency over {len(latencies)} accounts: "
        f"median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    assert median < 2.0
    assert all(n.key == NOTICE_KEY for n in watcher.notices())


def test_spark8t_account_is_noticed_once_when_labelled(kube_server, kubeconfig, start_watcher):
    kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spark"}})
    watcher = start_watcher()
    from spark8t.domain import Defaults, ServiceAccount
    from spark8t.kube_interface.lightkube import LightKubeInterface
    from spark8t.registry.k8s import K8sServiceAccountRegistry
    from spark8t.utils import PropertyFile

    kube = LightKubeInterface(str(kubeconfig), Defaults({}))
    try:
        registry = K8sServiceAccountRegistry(kube)
        before = len(watcher.notices())
        sa = ServiceAccount("bob", "spark", kube.api_server, extra_confs=PropertyFile({}))
        registry.create(sa)
        watcher.wait_mentioning("account spark/bob added", after=before)
        registry.delete("spark:bob")
        watcher.wait_mentioning("account spark/bob deleted", after=before)
    finally:
        kube.client.close()
    # spark8t's own Secret (spark8t-sa-conf-bob) is not a hub Secret: never a notice.
    assert not mentions(watcher.notices(), "spark8t-sa-conf")
    assert len(mentions(watcher.notices()[before:], "spark/bob added")) == 1


def test_relabel_is_not_a_deletion(kube_server, start_watcher):
    account(kube_server, "alice")
    watcher = start_watcher()
    before = len(watcher.notices())
    account(kube_server, "alice", **{"app.kubernetes.io/spark8t-primary": "True"})  # MODIFIED
    account(kube_server, "sentinel")
    watcher.wait_mentioning("team-a/sentinel added", after=before)
    assert not mentions(watcher.notices()[before:], "alice")
    # An account that loses the Spark label leaves the set: the server says DELETED.
    kube_server.put(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "alice", "namespace": "team-a", "labels": {}},
        }
    )
    watcher.wait_mentioning("team-a/alice deleted", after=before)


# -- the hub's Secrets --------------------------------------------------------------------------


def test_own_consistent_writes_are_ignored(kube_server, start_watcher):
    watcher = start_watcher()
    before = len(watcher.notices())
    kube_server.put(hub_secret({"spark.a": "1"}))  # the hub creates
    kube_server.put(hub_secret({"spark.a": "2", "spark.b": "3"}))  # the hub replaces
    kube_server.put(hub_secret({"spark.a": "1"}, name="carol", owner=OTHER_OWNER))
    kube_server.delete("Secret", "integrator-hub-conf-carol", "team-a")  # not ours
    kube_server.put(hub_secret({"x": "1"}, name="sentinel", digest="0" * 64))
    watcher.wait_mentioning("integrator-hub-conf-sentinel edited", after=before)
    later = watcher.notices()[before:]
    assert not mentions(later, "conf-alice") and not mentions(later, "conf-carol"), later


def test_hand_edit_and_delete_of_our_secret_are_noticed(kube_server, start_watcher):
    kube_server.put(hub_secret({"spark.a": "1"}))
    watcher = start_watcher()
    before = len(watcher.notices())
    edited = kube_server.get("Secret", "integrator-hub-conf-alice", "team-a")
    edited["data"]["spark.a"] = base64.b64encode(b"tampered").decode()
    kube_server.put(edited)
    watcher.wait_mentioning("team-a/integrator-hub-conf-alice edited", after=before)
    before = len(watcher.notices())
    kube_server.delete("Secret", "integrator-hub-conf-alice", "team-a")
    watcher.wait_mentioning("team-a/integrator-hub-conf-alice deleted", after=before)
    assert "tampered" not in watcher.log()


def test_a_real_hub_pass_does_not_wake_the_watcher(
    kube_server, kubeconfig, start_watcher, tmp_path
):
    for name in ("alice", "bob", "carol"):
        account(kube_server, name)
    watcher = start_watcher()
    before = len(watcher.notices())
    hub = make_hub(tmp_path / "hub.sqlite3")
    try:
        run(hub, options(**{"spark.executorEnv.LOKI_URL": "http://loki", "spark.a": "1"}))
        run(hub, options(**{"spark.a": "2"}))
    finally:
        hub.close()
    assert len(kube_server.list("Secret", "team-a")) == 3
    kube_server.put(hub_secret({"x": "1"}, name="sentinel", digest="0" * 64))
    watcher.wait_mentioning("conf-sentinel", after=before)
    assert not mentions(watcher.notices()[before:], "integrator-hub-conf-alice")


# -- faults -------------------------------------------------------------------------------------


def list_calls(server: KubeServer) -> int:
    return server.count("GET", "/api/v1/serviceaccounts", watch=False)


@pytest.mark.parametrize(
    "kind",
    [
        {"method": "GET", "drop_connection": True, "times": 2},
        {"watch_end_early": True, "times": 2},
    ],
    ids=["dropped-connection", "watch-ends-early"],
)
def test_watch_resumes_after_a_broken_stream(kube_server, start_watcher, kind):
    watcher = start_watcher(HUB_WATCHER_WATCH_TIMEOUT="1")  # a new watch request every second
    lists = list_calls(kube_server)
    fault = kube_server.inject(Fault(path_contains="/serviceaccounts", **kind))
    deadline = time.monotonic() + 10
    while fault.times and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fault.times == 0
    before = len(watcher.notices())
    account(kube_server, "after-fault")
    watcher.wait_mentioning("after-fault added", after=before)
    assert list_calls(kube_server) == lists  # resumed from its resourceVersion: no re-list
    assert "reconnecting" in watcher.log()


@pytest.mark.parametrize(
    "kind",
    [
        {"watch_gone": True},
        {"method": "GET", "status": 410},
    ],
    ids=["error-event", "http-410"],
)
def test_gone_relists_and_notifies_once(kube_server, start_watcher, kind):
    watcher = start_watcher(HUB_WATCHER_WATCH_TIMEOUT="1")
    lists = list_calls(kube_server)
    kube_server.inject(Fault(path_contains="/serviceaccounts", **kind))
    watcher.wait_mentioning("accounts re-listed after 410 Gone")
    assert list_calls(kube_server) == lists + 1
    before = len(watcher.notices())
    account(kube_server, "after-gone")
    watcher.wait_mentioning("after-gone added", after=before)
    assert len(mentions(watcher.notices(), "re-listed")) == 1


def test_server_errors_back_off_then_recover(kube_server, start_watcher):
    watcher = start_watcher(HUB_WATCHER_WATCH_TIMEOUT="1")
    kube_server.inject(Fault(path_contains="/serviceaccounts", status=500, times=-1))
    time.sleep(1.0)  # the current watch ends within a second, then errors begin
    kube_server.clear_requests()
    time.sleep(2.5)
    failed = kube_server.count("GET", "/serviceaccounts", watch=None)
    # Backoff 0.2, 0.4, 0.8, 1.6 s...: a handful of attempts, not a hot loop.
    assert 1 <= failed <= 6, failed
    state = json.loads(watcher.heartbeat.read_text())["watches"]["accounts"]
    assert "HTTP 500" in state
    kube_server.clear_faults()
    before = len(watcher.notices())
    account(kube_server, "after-errors")
    watcher.wait_mentioning("after-errors added", timeout=10, after=before)
    assert watcher.check().returncode == 0


def test_start_while_the_server_fails(kube_server, start_watcher):
    kube_server.inject(Fault(path_contains="/api/v1/", status=503, times=4))
    watcher = start_watcher(ready=False)
    watcher.wait_mentioning("watcher started", timeout=10)
    assert kube_server.count(None, "/api/v1/", watch=None) >= 6
    assert "HTTP 503" in watcher.log()


# -- health -------------------------------------------------------------------------------------


def test_check(kube_server, start_watcher, tmp_path):
    watcher = start_watcher()
    deadline = time.monotonic() + 5
    while not watcher.heartbeat.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    result = watcher.check()
    assert result.returncode == 0, result.stderr
    document = json.loads(watcher.heartbeat.read_text())
    assert document["watches"] == {"accounts": "watching", "secrets": "watching"}
    watcher.stop()

    document["connected"] = time.time() - 90  # a watcher whose watches died 90 s ago
    watcher.heartbeat.write_text(json.dumps(document))
    result = watcher.check()
    assert result.returncode == 1
    assert "watches last connected 90s ago" in result.stderr

    missing = watcher.check({**watcher.env, "HUB_WATCHER_HEARTBEAT": str(tmp_path / "none")})
    assert missing.returncode == 1
    assert "no heartbeat" in missing.stderr


def test_unreachable_server_shows_in_the_heartbeat(tmp_path, start_watcher):
    watcher = start_watcher(ready=False, HUB_WATCHER_SERVER="http://127.0.0.1:9")
    deadline = time.monotonic() + 5
    while not watcher.heartbeat.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    document = json.loads(watcher.heartbeat.read_text())
    assert document["connected"] is None
    assert "ConnectionRefusedError" in document["watches"]["accounts"]
    assert watcher.check().returncode == 0  # within the start-up grace period
    document["started"] -= 120
    watcher.stop()
    watcher.heartbeat.write_text(json.dumps(document))
    result = watcher.check()
    assert result.returncode == 1
    assert "never connected" in result.stderr and "ConnectionRefusedError" in result.stderr
    assert not watcher.notices()


def test_sigterm_exits_cleanly(start_watcher):
    watcher = start_watcher()
    watcher.process.terminate()
    assert watcher.process.wait(timeout=5) == 0


# -- debounce -----------------------------------------------------------------------------------


def test_a_burst_is_debounced(kube_server, start_watcher):
    interval = 0.5
    watcher = start_watcher(HUB_WATCHER_DEBOUNCE=str(interval))
    time.sleep(interval)
    before = len(watcher.notices())
    first = time.time()
    for number in range(50):
        account(kube_server, f"burst-{number}")
        time.sleep(0.02)  # a burst spread over about a second
    last = time.time()
    notice = watcher.wait_for(lambda n: n.time >= first, after=before)
    assert notice.time - first < interval  # the first change is not held back
    time.sleep(2 * interval + 0.2)
    burst = watcher.notices()[before:]
    allowed = int((last - first) / interval) + 2
    print(f"\n50 accounts in {last - first:.2f}s -> {len(burst)} notices")
    assert 2 <= len(burst) <= allowed
    assert sum(int(n.reason.split()[0]) if "changes" in n.reason else 1 for n in burst) == 50
    times = [n.time for n in burst]
    assert all(b - a >= interval * 0.95 for a, b in zip(times, times[1:]))


# -- follow-up requests -----------------------------------------------------------------------


def test_a_follow_up_request_wakes_the_charm_once_after_its_delay(
    kube_server, start_watcher, tmp_path
):
    request = tmp_path / "follow-up.json"
    watcher = start_watcher(HUB_WATCHER_FOLLOW_UP=str(request))
    time.sleep(0.1)
    before = len(watcher.notices())
    request.write_text(json.dumps({"after": 0.5, "reason": "reconciling 3/9 accounts"}))
    asked = time.time()
    notice = watcher.wait_mentioning("follow-up: reconciling 3/9 accounts", after=before)
    assert notice.time - asked >= 0.5
    time.sleep(1.5)  # the same request is answered once
    assert len(mentions(watcher.notices()[before:], "follow-up")) == 1
    request.write_text(json.dumps({"after": 0, "reason": "still reconciling"}))
    os.utime(request, (time.time() + 1, time.time() + 1))  # a new request, a new mtime
    watcher.wait_mentioning("follow-up: still reconciling", after=before)


def test_a_malformed_follow_up_request_is_ignored(kube_server, start_watcher, tmp_path):
    request = tmp_path / "follow-up.json"
    request.write_text('{"after": -3}')
    watcher = start_watcher(HUB_WATCHER_FOLLOW_UP=str(request))
    time.sleep(1.5)
    assert not mentions(watcher.notices(), "follow-up")
    assert "malformed" in watcher.log() or "bad delay" in watcher.log()
    assert watcher.process.poll() is None


# -- malformed events and dead threads ----------------------------------------------------------

CANARY = "hunter2-canary"
"""A value inside a malformed event or an exception: it must never reach the log."""


def _secret_with(**changes) -> dict:
    secret = hub_secret({"spark.a": CANARY}, name="mangled")
    secret.update(changes)
    return secret


def _meta_with(**changes) -> dict:
    secret = hub_secret({"spark.a": CANARY}, name="mangled")
    secret["metadata"] = {**secret["metadata"], **changes}
    return secret


MALFORMED_SECRET_EVENTS = [
    pytest.param(
        crafted_event("MODIFIED", _secret_with(data=[CANARY])),
        "data is not a mapping of strings",
        id="data-list",
    ),
    pytest.param(
        crafted_event("ADDED", _secret_with(data=CANARY)),
        "data is not a mapping of strings",
        id="data-string",
    ),
    pytest.param(
        crafted_event("MODIFIED", _secret_with(data={"spark.a": 7})),
        "data is not a mapping of strings",
        id="data-number-value",
    ),
    pytest.param(
        crafted_event("MODIFIED", _secret_with(data={"a": {"b": CANARY}})),
        "data is not a mapping of strings",
        id="data-nested",
    ),
    pytest.param(
        crafted_event("MODIFIED", CANARY), "event object is not a mapping", id="object-string"
    ),
    pytest.param(
        crafted_event("MODIFIED", _secret_with(metadata=[CANARY])),
        "metadata is not a mapping",
        id="metadata-list",
    ),
    pytest.param(
        crafted_event("DELETED", _meta_with(name={"n": CANARY})),
        "metadata.name is not an object name",
        id="name-object",
    ),
    pytest.param(
        crafted_event("DELETED", _meta_with(name=CANARY + "\nsecret x edited")),
        "metadata.name is not an object name",
        id="name-newline",
    ),
    pytest.param(
        crafted_event("ADDED", _meta_with(namespace=None)),
        "metadata.namespace is not a namespace name",
        id="namespace-missing",
    ),
    pytest.param(
        crafted_event("MODIFIED", _meta_with(resourceVersion={"rv": CANARY})),
        "resourceVersion is not a short printable string",
        id="rv-object",
    ),
    pytest.param(
        crafted_event("MODIFIED", _meta_with(resourceVersion=12)),
        "resourceVersion is not a short printable string",
        id="rv-number",
    ),
    pytest.param(
        crafted_event("MODIFIED", _meta_with(annotations=[CANARY])),
        "metadata.annotations is not a mapping of strings",
        id="annotations-list",
    ),
    pytest.param(
        crafted_event("MODIFIED", _secret_with(kind="ConfigMap")),
        "object is not a Secret",
        id="wrong-kind",
    ),
    pytest.param(
        crafted_event(["MODIFIED"], _secret_with()),
        "event type is not ADDED, MODIFIED, DELETED or BOOKMARK",
        id="type-list",
    ),
    pytest.param(
        crafted_event("BOOKMARK", {"metadata": {}}),
        "bookmark without a resourceVersion",
        id="bookmark-empty",
    ),
    pytest.param(
        b'{"type":"MODIFIED","object":{"data":"' + CANARY.encode() + b'"\n',
        "event is not JSON",
        id="not-json",
    ),
    pytest.param(
        b"[" * 100_000 + b"]" * 100_000 + b"\n", "event nested too deeply", id="deep-json"
    ),
    pytest.param(json.dumps([CANARY]).encode() + b"\n", "event is not a mapping", id="json-array"),
    pytest.param(
        b'{"type":"ADDED","object":{"data":"' + b"A" * (5 * 2**20) + b'"}}\n',
        "event over 4 MiB",
        id="over-4-mib",
    ),
]


def watch_requests(server: KubeServer, resource: str) -> int:
    return server.count("GET", f"/api/v1/{resource}", watch=True)


@pytest.mark.parametrize(("line", "problem"), MALFORMED_SECRET_EVENTS)
def test_a_malformed_secret_event_is_logged_skipped_and_the_stream_goes_on(
    kube_server, start_watcher, line, problem
):
    watcher = start_watcher()
    before = len(watcher.notices())
    watches = watch_requests(kube_server, "secrets")
    inject_line(kube_server.store, "Secret", line)
    kube_server.put(hub_secret({"x": "1"}, name="sentinel", digest="0" * 64))  # after it
    watcher.wait_mentioning("integrator-hub-conf-sentinel edited", after=before)
    assert [n.reason for n in watcher.notices()[before:]] == [
        "secret team-a/integrator-hub-conf-sentinel edited"
    ]
    log = watcher.log()
    assert f"secrets watch: skipped a malformed event ({problem})" in log
    assert CANARY not in log
    assert "reconnecting" not in log  # the same stream went on
    assert watch_requests(kube_server, "secrets") == watches
    assert watcher.process.poll() is None
    assert json.loads(watcher.heartbeat.read_text())["watches"]["secrets"] == "watching"


MALFORMED_ACCOUNT_EVENTS = [
    pytest.param(
        crafted_event("ADDED", {"metadata": CANARY}),
        "metadata is not a mapping",
        id="metadata-string",
    ),
    pytest.param(
        crafted_event("ADDED", {"metadata": {"namespace": "team-a"}}),
        "metadata.name is not an object name",
        id="no-name",
    ),
    pytest.param(
        crafted_event("DELETED", {"kind": "Secret", "metadata": {"name": "a", "namespace": "b"}}),
        "object is not a ServiceAccount",
        id="wrong-kind",
    ),
    pytest.param(
        crafted_event("ADDED", {"metadata": {"name": "a", "namespace": "b", "labels": {"x": 1}}}),
        "metadata.labels is not a mapping of strings",
        id="labels-number",
    ),
]


@pytest.mark.parametrize(("line", "problem"), MALFORMED_ACCOUNT_EVENTS)
def test_a_malformed_account_event_wakes_nobody_and_the_stream_goes_on(
    kube_server, start_watcher, line, problem
):
    watcher = start_watcher()
    before = len(watcher.notices())
    inject_line(kube_server.store, "ServiceAccount", line)
    account(kube_server, "sentinel")
    watcher.wait_mentioning("team-a/sentinel added", after=before)
    assert [n.reason for n in watcher.notices()[before:]] == ["account team-a/sentinel added"]
    assert f"accounts watch: skipped a malformed event ({problem})" in watcher.log()
    assert CANARY not in watcher.log()
    assert "reconnecting" not in watcher.log()


def test_a_flood_of_malformed_events_is_logged_once_and_counted(kube_server, start_watcher):
    watcher = start_watcher()
    before = len(watcher.notices())
    for _ in range(200):
        inject_line(kube_server.store, "Secret", MALFORMED_SECRET_EVENTS[0].values[0])
    kube_server.put(hub_secret({"x": "1"}, name="sentinel", digest="0" * 64))
    watcher.wait_mentioning("integrator-hub-conf-sentinel edited", after=before)
    assert watcher.log().count("skipped a malformed event") == 1


BUG_IN_THE_SECRETS_FILTER = f"""
import watcher.filters
real_reason = watcher.filters.SecretFilter.reason
def reason(self, kind, obj):
    if obj["metadata"]["name"] == "integrator-hub-conf-boom":
        raise RuntimeError("a bug that quotes data: {CANARY}")
    return real_reason(self, kind, obj)
watcher.filters.SecretFilter.reason = reason
"""


def test_a_watch_thread_that_dies_takes_the_process_down_at_once(kube_server, start_watcher):
    watcher = start_watcher(preamble=BUG_IN_THE_SECRETS_FILTER)
    kube_server.put(hub_secret({"x": "1"}, name="boom"))
    died = time.monotonic()
    assert watcher.process.wait(timeout=5) == 1, watcher.log()
    took = time.monotonic() - died
    log = watcher.log()
    assert "secrets watch thread failed: RuntimeError in reason" in log
    assert "exiting: the secrets watch thread died" in log
    assert CANARY not in log
    assert took < 2.0, took  # not a tick of the main loop, nor Pebble's check, later
    print(f"\nwatch thread died -> process exited in {took * 1000:.0f} ms")


BUG_IN_THE_MAIN_LOOP = f"""
import watcher.followup
def due(self):
    raise KeyError("{CANARY}")
watcher.followup.FollowUp.due = due
"""


def test_a_failure_of_the_main_loop_exits_non_zero_without_its_message(start_watcher):
    watcher = start_watcher(ready=False, preamble=BUG_IN_THE_MAIN_LOOP)
    assert watcher.process.wait(timeout=10) == 1, watcher.log()
    log = watcher.log()
    assert "exiting: the watcher failed (KeyError in due" in log
    assert CANARY not in log
