"""The watcher's checks of watch events and list pages, and what its threads do on a failure.

The process-level proof (the real watcher against the test API server) is in
tests/cluster/test_watcher.py; here the pure parts: `watcher.events`, `kube.parse_event` and
`kube._page`, a `WatchLoop` fed by a scripted client, and `Debouncer.interrupt`.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.events import MalformedError, WatchEvent, check_event, check_object
from watcher.filters import AccountFilter, SecretFilter, live_hash
from watcher.kube import (
    GoneError,
    KubeError,
    MalformedEventError,
    StreamError,
    _page,
    error_from_event,
    error_from_status,
    parse_event,
)
from watcher.loop import Backoff, WatchLoop, describe_crash
from watcher.notify import Debouncer

OWNER = "00000000-0000-4000-8000-000000000001/spark-integration-hub-k8s"
SECRET = {
    "kind": "Secret",
    "metadata": {
        "name": "integrator-hub-conf-alice",
        "namespace": "team-a",
        "resourceVersion": "12",
        "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
        "annotations": {"integration-hub/owner": OWNER},
    },
    "data": {"spark.a": "MQ=="},
}


def test_real_shapes_pass():
    checked = check_event({"type": "MODIFIED", "object": SECRET}, "Secret")
    assert checked == WatchEvent("MODIFIED", SECRET, "12")
    bookmark = {"kind": "Secret", "metadata": {"resourceVersion": "99"}}
    assert check_event({"type": "BOOKMARK", "object": bookmark}, "Secret").resource_version == "99"
    listed = {"metadata": {"name": "alice", "namespace": "team-a"}}  # list items have no kind
    assert check_object(listed, "ServiceAccount") is listed
    assert check_object({**SECRET, "data": None}, "Secret")["data"] is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"data": ["x"]}, "data is not a mapping of strings"),
        ({"data": {"k": None}}, "data is not a mapping of strings"),
        ({"kind": "ConfigMap"}, "object is not a Secret"),
        ({"metadata": None}, "metadata is not a mapping"),
        ({"metadata": {**SECRET["metadata"], "name": "A"}}, "metadata.name is not an object name"),
        (
            {"metadata": {**SECRET["metadata"], "name": "a" * 254}},
            "metadata.name is not an object name",
        ),
        (
            {"metadata": {**SECRET["metadata"], "namespace": "a.b"}},
            "metadata.namespace is not a namespace name",
        ),
        (
            {"metadata": {**SECRET["metadata"], "resourceVersion": "1 2"}},
            "resourceVersion is not a short printable string",
        ),
        (
            {"metadata": {**SECRET["metadata"], "resourceVersion": "9" * 129}},
            "resourceVersion is not a short printable string",
        ),
        (
            {"metadata": {**SECRET["metadata"], "labels": {"a": True}}},
            "metadata.labels is not a mapping of strings",
        ),
    ],
)
def test_a_malformed_object_names_the_kind_of_problem(change, problem):
    with pytest.raises(MalformedError) as error:
        check_event({"type": "MODIFIED", "object": {**SECRET, **change}}, "Secret")
    assert error.value.problem == problem


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"not json\n", "event is not JSON"),
        (b"\xff\xfe\n", "event is not JSON"),
        (b"[" * 50_000 + b"]" * 50_000 + b"\n", "event nested too deeply"),
        (b"[]\n", "event is not a mapping"),
        (b'{"type":"ADDED","object":[]}\n', "event object is not a mapping"),
    ],
)
def test_a_complete_line_that_is_no_event_is_malformed_not_a_broken_stream(line, problem):
    with pytest.raises(MalformedEventError) as error:
        parse_event(line)
    assert error.value.problem == problem
    with pytest.raises(StreamError) as cut:
        parse_event(b'{"type":"ADDED"')
    assert not isinstance(cut.value, MalformedEventError)


def test_error_events_keep_only_a_status_code_and_a_short_reason():
    assert isinstance(error_from_event({"code": 410, "reason": "Expired"}), GoneError)
    error = error_from_event({"code": True, "reason": {"secret": "hunter2"}})
    assert (error.status, error.reason) == (500, "")
    assert error_from_event({"code": 10**100, "reason": "x y"}).status == 500
    assert error_from_status(500, b'{"reason": "hunter2 in a sentence"}').reason == ""
    assert error_from_status(503, b"[" * 100_000).reason == ""


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ([], "list page is not a mapping"),
        ({"items": {"a": 1}}, "list page items or metadata of the wrong type"),
        ({"items": [], "metadata": []}, "list page items or metadata of the wrong type"),
        ({"items": [], "metadata": {"continue": 5}}, "list continue token is not a string"),
        (
            {"items": [], "metadata": {"resourceVersion": {"a": 1}}},
            "resourceVersion is not a short printable string",
        ),
    ],
)
def test_a_list_page_of_the_wrong_shape_is_malformed(page, problem):
    with pytest.raises(MalformedError) as error:
        _page(json.dumps(page).encode())
    assert error.value.problem == problem
    assert _page(b'{"items": null, "metadata": {"resourceVersion": "7"}}') == ([], "", "7")


def test_live_hash_of_data_that_is_no_mapping_is_none():
    assert live_hash({"data": ["x"]}) is None
    assert live_hash({"data": "x"}) is None


# -- any JSON value: checked or refused, never a crash --------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_FIELDS = st.sampled_from(["type", "object", "kind", "metadata", "name", "namespace", "data"])


def _mangle(value, field_values):
    event = {"type": "MODIFIED", "object": json.loads(json.dumps(SECRET))}
    for field, replacement in field_values:
        if field in ("type", "object"):
            event[field] = replacement
        elif field in ("kind", "data"):
            if isinstance(event["object"], dict):
                event["object"][field] = replacement
        elif isinstance(event["object"], dict):
            metadata = event["object"].get("metadata")
            if isinstance(metadata, dict):
                metadata[field] = replacement
    return value if value is not None else event


@settings(derandomize=True, max_examples=500, deadline=None)
@given(
    value=st.one_of(st.none(), _JSON),
    field_values=st.lists(st.tuples(_FIELDS, _JSON), max_size=3),
)
def test_any_event_is_checked_or_refused_and_a_checked_one_never_breaks_a_filter(
    value, field_values
):
    event = _mangle(value, field_values)
    for kind, filter_ in (("Secret", SecretFilter(OWNER)), ("ServiceAccount", AccountFilter())):
        try:
            checked = check_event(event, kind)
        except MalformedError as error:
            assert "hunter2" not in error.problem
            continue
        if checked.type != "BOOKMARK":
            filter_.seed(checked.object)
            filter_.reason(checked.type, checked.object)


# -- the loop: malformed events skipped, a bug reported ------------------------------------------


class ScriptedClient:
    """A client whose one watch yields `events`, then stops the loop."""

    def __init__(self, events, listed=()):
        self.events = events
        self.listed = listed
        self.loop: WatchLoop | None = None
        self.watches = 0

    def list(self, resource, selector, page_size, visit):
        for item in self.listed:
            visit(item)
        return "1"

    def watch(self, resource, selector, rv, timeout, on_connected):
        self.watches += 1
        assert self.loop is not None
        if self.watches > 1:
            self.loop.stop()
            return
        on_connected()
        yield from self.events


def _run(client, filter_, **kwargs) -> tuple[WatchLoop, list[str]]:
    wakes: list[str] = []
    loop = WatchLoop(
        client, filter_, wakes.append, lambda name: None, backoff=Backoff(0.001, 0.002), **kwargs
    )
    client.loop = loop
    loop.run()
    return loop, wakes


def test_malformed_events_and_listed_objects_are_skipped_and_the_stream_goes_on(caplog):
    good = {"type": "ADDED", "object": {"metadata": {"name": "b", "namespace": "ns"}}}
    client = ScriptedClient(
        [
            MalformedError("event is not JSON"),
            {"type": "ADDED", "object": {"metadata": {"name": ["hunter2"], "namespace": "ns"}}},
            {"type": "ADDED", "object": {"metadata": "hunter2"}},
            {"type": "ADDED", "object": {"metadata": "hunter2"}},
            good,
        ],
        listed=[{"metadata": []}, {"metadata": {"name": "a", "namespace": "ns"}}],
    )
    loop, wakes = _run(client, AccountFilter())
    assert wakes == ["account ns/b added"]
    assert loop.malformed == 5 and loop.failure is None and client.watches == 2
    logged = [r.getMessage() for r in caplog.records]
    assert (
        logged.count(
            "accounts watch: skipped a malformed event (metadata is not a mapping); 4 "
            "skipped since start"
        )
        == 1
    )
    assert not any("hunter2" in message for message in logged)


def test_an_unexpected_exception_ends_the_thread_reports_it_and_never_quotes_it(caplog):
    class Buggy(AccountFilter):
        def reason(self, kind, obj):
            raise KeyError("hunter2")

    failed: list[str] = []
    good = {"type": "ADDED", "object": {"metadata": {"name": "b", "namespace": "ns"}}}
    loop, _ = _run(ScriptedClient([good]), Buggy(), on_failure=failed.append)
    assert failed == ["accounts"]
    assert loop.failure is not None and loop.failure.startswith("KeyError in reason (")
    assert loop.state.startswith("failed: KeyError") and not loop.connected
    assert "hunter2" not in " ".join(r.getMessage() for r in caplog.records)
    assert describe_crash(RuntimeError("hunter2")) == "RuntimeError"


def test_interrupt_ends_a_step_at_once_and_sends_nothing():
    sent: list[str] = []
    debouncer = Debouncer(1.0, lambda reason: bool(sent.append(reason)) or True)
    threading.Timer(0.05, debouncer.interrupt).start()
    started = time.monotonic()
    assert debouncer.step(10.0) is False
    assert time.monotonic() - started < 1.0 and sent == []
    debouncer.wake("x")
    assert debouncer.step(1.0) is True and sent == ["x"]


def test_kube_errors_still_reconnect_rather_than_kill_the_thread():
    class Failing(ScriptedClient):
        def watch(self, resource, selector, rv, timeout, on_connected):
            self.watches += 1
            assert self.loop is not None
            if self.watches > 2:
                self.loop.stop()
                return
            raise KubeError(500, "InternalError")
            yield  # a generator, as the real one

    loop, _ = _run(Failing([]), AccountFilter())
    assert loop.failure is None and loop.state.startswith("reconnecting after HTTP 500")
