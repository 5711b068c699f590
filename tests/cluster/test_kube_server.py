"""The fake Kubernetes API server, driven by the real clients: lightkube 1.x and spark8t 1.6.0."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import httpx2
import pytest
from lightkube import ApiError, Client, KubeConfig, operators
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import Namespace, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role
from lightkube.types import CascadeType, PatchType, on_error_raise

from tests.kube_server import Fault, KubeServer
from tests.kube_server.patch import json_patch

FORBIDDEN_LIST = (
    'secrets is forbidden: User "system:serviceaccount:test:hub" cannot list resource "secrets" '
    'in API group "" at the cluster scope'
)
CONFLICT = (
    'Operation cannot be fulfilled on secrets "s": the object has been modified; please apply '
    "your changes to the latest version and try again"
)


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def client(kubeconfig: Path) -> Iterator[Client]:
    """A real lightkube client for the test server, closed after the test."""
    kube = Client(KubeConfig.from_file(kubeconfig), field_manager="tests")
    try:
        yield kube
    finally:
        kube.close()


def secret_obj(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Secret document for ``server.put`` (values given in clear, stored base64)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        metadata["labels"] = labels
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": encoded, **extra}


def raw(
    server: KubeServer,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], bytes]:
    """Send one request with the standard library and return status, headers and body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        connection.request(method, path, body=payload, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def api_error(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    """Run a client call that must fail with ApiError and return the error."""
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    return info.value


def watch_events(
    client: Client, count: int, **kwargs: Any
) -> list[tuple[str, str, dict[str, str]]]:
    """Collect ``count`` (type, name, labels) events from a lightkube Secret watch."""
    events = []
    stream = client.watch(Secret, server_timeout=5, **kwargs)
    for kind, obj in stream:
        events.append((kind, obj.metadata.name, dict(obj.metadata.labels or {})))
        if len(events) == count:
            break
    stream.close()
    return events


# -- create / get / bookkeeping ----------------------------------------------------------------


def test_create_get_and_bookkeeping(kube_server: KubeServer, client: Client):
    created = client.create(
        Secret(metadata=ObjectMeta(name="s", labels={"a": "1"}), stringData={"k": "v"})
    )

    assert created.data == {"k": base64.b64encode(b"v").decode()}
    assert created.stringData is None
    assert created.type == "Opaque"
    assert isinstance(created.metadata.resourceVersion, str)
    assert int(created.metadata.resourceVersion) > 0
    assert created.metadata.uid and created.metadata.creationTimestamp
    fetched = client.get(Secret, "s", namespace="default")
    assert fetched.metadata.resourceVersion == created.metadata.resourceVersion
    stored = kube_server.get("Secret", "s")
    assert stored is not None and "stringData" not in stored
    namespace = client.get(Namespace, "default")
    assert namespace.status.phase == "Active"
    assert namespace.metadata.labels == {"kubernetes.io/metadata.name": "default"}


def test_create_errors_and_dry_run(kube_server: KubeServer, client: Client):
    client.create(Secret(metadata=ObjectMeta(name="x")))

    exists = api_error(client.create, Secret(metadata=ObjectMeta(name="x")))
    missing_ns = api_error(client.create, Secret(metadata=ObjectMeta(name="y", namespace="nope")))
    client.create(Secret(metadata=ObjectMeta(name="dry")), dry_run=True)

    assert (exists.status.code, exists.status.reason) == (409, "AlreadyExists")
    assert exists.status.message == 'secrets "x" already exists'
    assert (missing_ns.status.code, missing_ns.status.message) == (
        404,
        'namespaces "nope" not found',
    )
    assert kube_server.get("Secret", "dry") is None
    assert kube_server.count("POST") == 4


def test_not_found_is_an_api_error_with_a_json_status(kube_server: KubeServer, client: Client):
    error = api_error(client.get, ServiceAccount, "U", namespace="default")
    rbac_error = api_error(client.get, Role, "r", namespace="default")

    assert (error.status.code, error.status.reason) == (404, "NotFound")
    assert error.status.message == 'serviceaccounts "U" not found'
    assert error.response.headers["Content-Type"] == "application/json"
    assert rbac_error.status.message == 'roles.rbac.authorization.k8s.io "r" not found'


def test_secret_validation(client: Client):
    bad_key = api_error(
        client.create, Secret(metadata=ObjectMeta(name="k"), stringData={"a b": "1"})
    )
    too_big = api_error(
        client.create, Secret(metadata=ObjectMeta(name="big"), stringData={"k": "x" * (1 << 20)})
    )

    assert (bad_key.status.code, bad_key.status.reason) == (422, "Invalid")
    assert bad_key.status.message.startswith('Secret "k" is invalid: data[a b]: Invalid value')
    assert too_big.status.code == 422
    assert "Too long" in too_big.status.message


# -- list ---------------------------------------------------------------------------------------


@pytest.fixture
def labelled(kube_server: KubeServer) -> KubeServer:
    """Secrets in two namespaces with various labels."""
    for namespace in ("a", "b"):
        kube_server.put(secret_obj("web", namespace, {"app": "x", "tier": "web"}))
        kube_server.put(secret_obj("api", namespace, {"app": "x", "tier": "api"}))
        kube_server.put(secret_obj("db", namespace, {"app": "y", "tier": "db"}))
        kube_server.put(secret_obj("bare", namespace))
    return kube_server


def names(items: Any) -> list[str]:
    """The namespace/name of listed objects, in order."""
    return [f"{obj.metadata.namespace}/{obj.metadata.name}" for obj in items]


@pytest.mark.parametrize(
    "labels, expected",
    [
        ({"app": "x"}, ["api", "web"]),
        ({"tier": operators.not_equal("db")}, ["api", "bare", "web"]),
        ({"tier": ["web", "db"]}, ["db", "web"]),
        ({"tier": None}, ["api", "db", "web"]),
        ({"tier": operators.not_exists()}, ["bare"]),
        ({"tier": operators.not_in(["web", "api"])}, ["bare", "db"]),
        ({"app": "x", "tier": operators.not_equal("web")}, ["api"]),
    ],
)
def test_list_label_selectors_across_namespaces(
    labelled: KubeServer, client: Client, labels: dict[str, Any], expected: list[str]
):
    everywhere = names(client.list(Secret, namespace="*", labels=labels))
    in_b = names(client.list(Secret, namespace="b", labels=labels))

    assert everywhere == [f"a/{n}" for n in expected] + [f"b/{n}" for n in expected]
    assert in_b == [f"b/{n}" for n in expected]
    assert labelled.requests[0].path == "/api/v1/secrets"


def test_list_field_selectors(labelled: KubeServer, client: Client):
    by_name = names(client.list(Secret, namespace="*", fields={"metadata.name": "db"}))
    not_a = names(
        client.list(Secret, namespace="*", fields={"metadata.namespace": operators.not_equal("a")})
    )

    assert by_name == ["a/db", "b/db"]
    assert not_a == ["b/api", "b/bare", "b/db", "b/web"]


def test_list_pagination_uses_continue_tokens(kube_server: KubeServer, client: Client):
    for index in range(25):
        kube_server.put(secret_obj(f"s{index:02d}", labels={"page": "yes"}))

    listed = client.list(Secret, namespace="default", chunk_size=10)
    items = names(listed)
    selected = names(client.list(Secret, chunk_size=7, labels={"page": "yes"}))

    assert items == [f"default/s{index:02d}" for index in range(25)]
    assert selected == items
    assert listed.resourceVersion == kube_server.resource_version
    pages = [r for r in kube_server.requests if r.path == "/api/v1/namespaces/default/secrets"]
    assert len(pages) == 3 + 4
    assert "continue" not in pages[0].query and pages[0].query["limit"] == "10"
    assert all(page.query.get("continue") for page in pages[1:3])


def test_empty_list_has_an_items_array(kube_server: KubeServer):
    status, headers, body = raw(kube_server, "GET", "/apis/rbac.authorization.k8s.io/v1/roles")

    document = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert document["kind"] == "RoleList" and document["items"] == []
    assert document["metadata"] == {"resourceVersion": kube_server.resource_version}


def test_version_and_discovery(kube_server: KubeServer):
    version = json.loads(raw(kube_server, "GET", "/version")[2])
    core = json.loads(raw(kube_server, "GET", "/api/v1")[2])
    unknown_status, _, unknown = raw(kube_server, "GET", "/api/v1/widgets")

    assert version["gitVersion"].startswith("v1.")
    assert {r["name"] for r in core["resources"]} >= {"secrets", "serviceaccounts", "namespaces"}
    assert unknown_status == 404 and json.loads(unknown)["reason"] == "NotFound"


# -- replace and patch --------------------------------------------------------------------------


def test_replace_with_stale_resource_version_is_a_conflict(
    kube_server: KubeServer, client: Client
):
    kube_server.put(secret_obj("s", data={"k": "1"}))
    first = client.get(Secret, "s", namespace="default")
    first.data = {"k": base64.b64encode(b"2").decode()}
    replaced = client.replace(first)

    stale = api_error(client.replace, first)
    missing = api_error(client.replace, Secret(metadata=ObjectMeta(name="gone")))

    assert int(replaced.metadata.resourceVersion) > int(first.metadata.resourceVersion)
    assert (stale.status.code, stale.status.reason, stale.status.message) == (
        409,
        "Conflict",
        CONFLICT,
    )
    assert missing.status.code == 404


def test_no_op_writes_keep_the_resource_version(kube_server: KubeServer, client: Client):
    kube_server.put(secret_obj("s", labels={"a": "1"}, data={"k": "1"}))
    current = client.get(Secret, "s", namespace="default")
    before = kube_server.resource_version

    replaced = client.replace(current)
    patched = client.patch(Secret, "s", {"metadata": {"labels": {"a": "1"}}}, namespace="default")

    assert replaced.metadata.resourceVersion == current.metadata.resourceVersion
    assert patched.metadata.resourceVersion == current.metadata.resourceVersion
    assert kube_server.resource_version == before


def test_strategic_merge_patch_drops_unknown_fields(kube_server: KubeServer, client: Client):
    kube_server.put(secret_obj("s", labels={"keep": "1"}, data={"old": "1"}))

    patched = client.patch(
        Secret,
        "s",
        {"op": "add", "stringData": {"new": "2"}, "metadata": {"labels": {"added": "y"}}},
        namespace="default",
    )

    stored = kube_server.get("Secret", "s")
    assert stored is not None and "op" not in stored and "stringData" not in stored
    assert set(stored["data"]) == {"old", "new"}
    assert patched.metadata.labels == {"keep": "1", "added": "y"}


def test_merge_patch_null_deletes(kube_server: KubeServer, client: Client):
    kube_server.put(secret_obj("s", labels={"a": "1", "b": "2"}))

    patched = client.patch(
        Secret,
        "s",
        {"metadata": {"labels": {"a": None, "c": "3"}}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )

    assert patched.metadata.labels == {"b": "2", "c": "3"}


def test_json_patch_operations_and_escapes(kube_server: KubeServer, client: Client):
    kube_server.put(secret_obj("s", labels={"app.kubernetes.io/x": "1"}, data={"k": "1"}))
    operations = [
        {"op": "test", "path": "/metadata/labels/app.kubernetes.io~1x", "value": "1"},
        {"op": "add", "path": "/metadata/labels/b", "value": "added"},
        {"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1x", "value": "2"},
        {"op": "remove", "path": "/data"},
    ]

    patched = client.patch(Secret, "s", operations, namespace="default", patch_type=PatchType.JSON)
    failed = api_error(
        client.patch,
        Secret,
        "s",
        [{"op": "test", "path": "/metadata/labels/b", "value": "no"}],
        namespace="default",
        patch_type=PatchType.JSON,
    )

    assert patched.metadata.labels == {"app.kubernetes.io/x": "2", "b": "added"}
    assert patched.data is None
    assert failed.status.code == 422


def test_json_pointer_escapes():
    document = {"a/b": {"c~d": [1, 2]}}

    patched = json_patch(document, [{"op": "add", "path": "/a~1b/c~0d/-", "value": 3}])

    assert patched == {"a/b": {"c~d": [1, 2, 3]}}
    assert document == {"a/b": {"c~d": [1, 2]}}


def test_server_side_apply_creates_then_prunes_fields(kube_server: KubeServer, client: Client):
    desired = Secret(
        metadata=ObjectMeta(name="s", namespace="default", labels={"a": "1", "b": "2"}),
        data={"k1": "MQ==", "k2": "Mg=="},
    )

    created = client.apply(desired)
    desired.metadata.labels = {"a": "1"}
    desired.data = {"k1": "MQ=="}
    updated = client.apply(desired)
    status, _, _ = raw(
        kube_server,
        "PATCH",
        "/api/v1/namespaces/default/secrets/s",
        b"kind: Secret\napiVersion: v1\nmetadata: {name: s}\n",
        content_type="application/apply-patch+yaml",
    )

    assert kube_server.requests[0].status == 201
    assert created.data == {"k1": "MQ==", "k2": "Mg=="}
    assert updated.metadata.labels == {"a": "1"} and updated.data == {"k1": "MQ=="}
    assert status == 422  # no fieldManager


def test_apply_keeps_keys_dropped_from_string_data(client: Client):
    # Real-server behaviour: stringData is write-only, so an apply that stops sending a
    # stringData key does not remove the data key it produced.
    first = Secret(metadata=ObjectMeta(name="s"), stringData={"a": "1", "b": "2"})
    second = Secret(metadata=ObjectMeta(name="s"), stringData={"a": "1"})

    client.apply(first, namespace="default")
    applied = client.apply(second, namespace="default")

    assert applied.data is not None and set(applied.data) == {"a", "b"}


def test_patch_conflicts_and_unsupported_media_type(kube_server: KubeServer, client: Client):
    stored = kube_server.put(secret_obj("s"))
    stale = {"metadata": {"resourceVersion": "1", "labels": {"a": "1"}}}
    fresh = {"metadata": {"resourceVersion": stored["metadata"]["resourceVersion"]}}

    conflict = api_error(client.patch, Secret, "s", stale, namespace="default")
    client.patch(Secret, "s", fresh, namespace="default", patch_type=PatchType.MERGE)
    missing = api_error(client.patch, Secret, "nope", {}, namespace="default")
    status, headers, body = raw(
        kube_server, "PATCH", "/api/v1/namespaces/default/secrets/s", {}, "application/xml"
    )

    assert (conflict.status.code, conflict.status.reason) == (409, "Conflict")
    assert missing.status.code == 404
    assert status == 415 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["reason"] == "UnsupportedMediaType"


# -- delete -------------------------------------------------------------------------------------


def test_delete_garbage_collects_owned_objects(kube_server: KubeServer, client: Client):
    account = client.create(ServiceAccount(metadata=ObjectMeta(name="u")))
    owner = OwnerReference(
        apiVersion="v1", kind="ServiceAccount", name="u", uid=account.metadata.uid
    )
    client.create(Secret(metadata=ObjectMeta(name="owned", ownerReferences=[owner])))
    client.create(Secret(metadata=ObjectMeta(name="other")))

    client.delete(ServiceAccount, "u", namespace="default", cascade=CascadeType.BACKGROUND)
    missing = api_error(client.delete, ServiceAccount, "u", namespace="default")

    assert kube_server.get("Secret", "owned") is None
    assert kube_server.get("Secret", "other") is not None
    assert missing.status.code == 404
    assert missing.status.message == 'serviceaccounts "u" not found'


def test_orphan_delete_and_namespace_delete(kube_server: KubeServer, client: Client):
    def owned_secret(name: str, owner: dict[str, Any]) -> None:
        ref = {"apiVersion": "v1", "kind": "ServiceAccount", "name": owner["metadata"]["name"]}
        ref["uid"] = owner["metadata"]["uid"]
        metadata = {"name": name, "namespace": "n", "ownerReferences": [ref]}
        kube_server.put({"apiVersion": "v1", "kind": "Secret", "metadata": metadata})

    def account(name: str) -> dict[str, Any]:
        metadata = {"name": name, "namespace": "n"}
        return kube_server.put(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
        )

    owned_secret("orphan", account("u"))
    owned_secret("collected", account("v"))
    owned_secret("kept", account("w"))

    client.delete(ServiceAccount, "u", namespace="n", cascade=CascadeType.ORPHAN)
    kube_server.delete("ServiceAccount", "v", "n")  # direct deletes collect garbage too
    orphan = kube_server.get("Secret", "orphan", "n")
    collected = kube_server.get("Secret", "collected", "n")
    kept = kube_server.get("Secret", "kept", "n")
    client.delete(Namespace, "n")

    assert orphan is not None and "ownerReferences" not in orphan["metadata"]
    assert collected is None and kept is not None
    assert kube_server.list("Secret", "n") == []
    assert kube_server.list("ServiceAccount", "n") == []
    assert kube_server.get("Namespace", "n") is None


# -- faults ---------------------------------------------------------------------------------------


def test_injected_429_carries_retry_after(kube_server: KubeServer, client: Client):
    kube_server.inject(Fault(method="GET", path_contains="/secrets", status=429, retry_after=3))

    throttled = api_error(client.list(Secret).__iter__().__next__)
    after = list(client.list(Secret))

    assert (throttled.status.code, throttled.status.reason) == (429, "TooManyRequests")
    assert throttled.response.headers["Retry-After"] == "3"
    assert after == []
    assert [r.status for r in kube_server.requests] == [429, 200]


@pytest.mark.parametrize("status, reason", [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_injected_server_errors(kube_server: KubeServer, client: Client, status: int, reason: str):
    kube_server.inject(Fault(path_contains="/serviceaccounts/u", status=status, times=2))

    errors = [api_error(client.get, ServiceAccount, "u").status for _ in range(3)]

    assert [(e.code, e.reason) for e in errors] == [(status, reason)] * 2 + [(404, "NotFound")]


def test_injected_403_and_409_use_real_messages(kube_server: KubeServer, client: Client):
    kube_server.inject(Fault(method="GET", status=403))
    kube_server.inject(Fault(method="PUT", status=409))
    kube_server.put(secret_obj("s"))

    forbidden = api_error(lambda: list(client.list(Secret, namespace="*")))
    conflict = api_error(client.replace, Secret(metadata=ObjectMeta(name="s")))

    assert forbidden.status.message == FORBIDDEN_LIST
    assert conflict.status.message == CONFLICT


def test_dropped_connection_and_slow_response(kube_server: KubeServer, kubeconfig: Path):
    kube_server.inject(Fault(method="GET", drop_connection=True))
    kube_server.inject(Fault(method="GET", delay=0.5))
    with Client(KubeConfig.from_file(kubeconfig), timeout=httpx2.Timeout(0.2)) as impatient:
        with pytest.raises(httpx2.RemoteProtocolError):
            impatient.get(Namespace, "default")
        with pytest.raises(httpx2.ReadTimeout):
            impatient.get(Namespace, "default")
        assert impatient.get(Namespace, "default").metadata.name == "default"

    assert [r.status for r in kube_server.requests][0] == 0


def test_probabilistic_faults_are_reproducible(kube_server: KubeServer, client: Client):
    def outcomes() -> list[int]:
        kube_server.clear_requests()
        kube_server.clear_faults()
        kube_server.faults.rng.seed(0)
        kube_server.inject(Fault(status=500, times=-1, probability=0.3))
        for _ in range(20):
            try:
                client.get(Namespace, "default")
            except ApiError:
                pass
        return [r.status for r in kube_server.requests]

    first = outcomes()

    assert first == outcomes()
    assert 0 < first.count(500) < 20


# -- watch --------------------------------------------------------------------------------------


def test_watch_replays_history_with_selector_semantics(kube_server: KubeServer, client: Client):
    kube_server.put(secret_obj("one", labels={"app": "x"}))
    start = kube_server.resource_version
    kube_server.put(secret_obj("one", labels={"app": "x"}, data={"k": "v"}))  # MODIFIED
    kube_server.put(secret_obj("two", labels={"app": "y"}))  # not matching: nothing
    kube_server.put(secret_obj("two", labels={"app": "x"}))  # starts matching: ADDED
    kube_server.put(secret_obj("one", labels={"app": "z"}, data={"k": "v"}))  # stops: DELETED
    kube_server.delete("Secret", "two")  # DELETED

    events = watch_events(
        client, 4, namespace="default", labels={"app": "x"}, resource_version=start
    )

    assert events == [
        ("MODIFIED", "one", {"app": "x"}),
        ("ADDED", "two", {"app": "x"}),
        ("DELETED", "one", {"app": "x"}),
        ("DELETED", "two", {"app": "x"}),
    ]


def test_watch_live_events(kube_server: KubeServer, client: Client):
    kube_server.put(secret_obj("existing", labels={"app": "x"}))

    def changes() -> None:
        time.sleep(0.2)
        kube_server.put(secret_obj("new", labels={"app": "y"}))
        kube_server.put(secret_obj("new", labels={"app": "x"}))
        kube_server.put(secret_obj("existing", labels={"app": "x"}, data={"a": "b"}))
        kube_server.put(secret_obj("existing", labels={"app": "gone"}, data={"a": "b"}))

    writer = threading.Thread(target=changes)
    writer.start()
    events = watch_events(client, 4, namespace="*", labels={"app": "x"})
    writer.join()

    assert [(kind, name) for kind, name, _ in events] == [
        ("ADDED", "existing"),
        ("ADDED", "new"),
        ("MODIFIED", "existing"),
        ("DELETED", "existing"),
    ]
    assert kube_server.count(watch=True) == 1


def test_watch_too_old_resource_version_is_410(kubeconfig: Path, tmp_path: Path):
    with KubeServer(history_size=5) as server:
        for index in range(10):
            server.put(secret_obj(f"s{index}"))
        path = server.write_kubeconfig(tmp_path / "small-history")
        with Client(KubeConfig.from_file(path)) as kube:
            error = api_error(lambda: next(iter(kube.watch(Secret, resource_version="2"))))

    assert (error.status.code, error.status.reason) == (410, "Expired")
    assert error.status.message.startswith("too old resource version: 2")


def test_watch_faults_gone_and_end_early(kube_server: KubeServer, client: Client):
    kube_server.put(secret_obj("s"))
    kube_server.inject(Fault(watch_gone=True))

    gone = api_error(lambda: next(iter(client.watch(Secret, namespace="default"))))
    kube_server.inject(Fault(watch_end_early=True))
    stream = client.watch(Secret, namespace="default", on_error=on_error_raise)
    first = next(stream)

    def modify() -> None:
        time.sleep(0.1)
        kube_server.put(secret_obj("s", labels={"b": "2"}))

    writer = threading.Thread(target=modify)
    writer.start()
    second = next(stream)
    stream.close()
    writer.join()

    assert gone.status.code == 410
    assert (first[0], second[0]) == ("ADDED", "MODIFIED")
    watches = [r for r in kube_server.requests if r.watch]
    assert len(watches) == 3
    assert watches[2].query["resourceVersion"] == first[1].metadata.resourceVersion


def test_watch_ends_cleanly_at_timeout_and_on_stop(kube_server: KubeServer):
    started = time.monotonic()
    status, headers, body = raw(kube_server, "GET", "/api/v1/secrets?watch=1&timeoutSeconds=1")
    elapsed = time.monotonic() - started
    done = threading.Event()

    def endless_watch() -> None:
        raw(kube_server, "GET", "/api/v1/namespaces?watch=true")
        done.set()

    watcher = threading.Thread(target=endless_watch)
    watcher.start()
    time.sleep(0.2)
    kube_server.stop()
    watcher.join(timeout=3)

    assert status == 200 and headers["Transfer-Encoding"] == "chunked"
    assert headers["Content-Type"] == "application/json"
    assert body == b""
    assert 0.9 < elapsed < 3
    assert done.is_set()


# -- authorisation -------------------------------------------------------------------------------


def test_self_subject_access_review_and_denied_requests(kube_server: KubeServer, client: Client):
    def review(verb: str, resource: str) -> bool:
        attributes = ResourceAttributes(verb=verb, resource=resource, namespace="default")
        spec = SelfSubjectAccessReviewSpec(resourceAttributes=attributes)
        return client.create(SelfSubjectAccessReview(spec=spec)).status.allowed

    kube_server.denied.add(("list", "secrets"))

    assert review("list", "secrets") is False
    assert review("get", "secrets") is True
    forbidden = api_error(lambda: list(client.list(Secret, namespace="*")))
    assert (forbidden.status.code, forbidden.status.reason) == (403, "Forbidden")
    assert forbidden.status.message == FORBIDDEN_LIST
    assert client.get(Namespace, "default").metadata.name == "default"


# -- spark8t ----------------------------------------------------------------------------------


def test_spark8t_registry_lifecycle(kube_server: KubeServer, spark8t: SimpleNamespace):
    kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spark"}})
    registry = spark8t.registry

    spark8t.create("alice", "spark")
    account = kube_server.get("ServiceAccount", "alice", "spark")
    role = kube_server.get("Role", "alice-role", "spark")
    binding = kube_server.get("RoleBinding", "alice-role-binding", "spark")
    own_secret = kube_server.get("Secret", "spark8t-sa-conf-alice", "spark")
    fetched = registry.get("spark:alice")
    listed = [account.id for account in registry.all()]
    registry.set_primary("spark:alice", "spark")
    primary = kube_server.get("ServiceAccount", "alice", "spark")
    registry.set_configurations(
        "spark:alice", spark8t.PropertyFile({"spark.executorEnv.A_B": "c"})
    )
    configured = registry.get("spark:alice")
    registry.delete("spark:alice")

    assert account is not None and role is not None and binding is not None
    assert own_secret is not None
    assert own_secret["metadata"]["labels"] == {"app.kubernetes.io/generated-by": "spark8t"}
    assert account["metadata"]["labels"] == {
        "app.kubernetes.io/generated-by": "spark8t",
        "app.kubernetes.io/managed-by": "spark8t",
    }
    assert len(role["rules"]) == 3
    assert role["rules"][2]["resourceNames"] == ["integrator-hub-conf-alice"]
    assert binding["roleRef"]["name"] == "alice-role"
    assert fetched is not None and fetched.id == "spark:alice"
    assert listed == ["spark:alice"]
    assert primary is not None
    assert "app.kubernetes.io/spark8t-primary" in primary["metadata"]["labels"]
    assert configured is not None
    assert configured.extra_confs.props == {"spark.executorEnv.A_B": "c"}
    assert kube_server.list("ServiceAccount", "spark") == []
    assert kube_server.list("Role", "spark") == []
    assert kube_server.list("RoleBinding", "spark") == []
    assert kube_server.list("Secret", "spark") == []


def test_spark8t_reads_the_hub_secret(kube_server: KubeServer, spark8t: SimpleNamespace):
    spark8t.create("bob", "default")
    kube_server.put(
        secret_obj(
            "integrator-hub-conf-bob",
            data={
                "spark.executorEnv.LOKI_5fURL": "http://loki:3100",
                "spark.metrics.conf._2a.sink.prometheus.class": "Sink",
            },
        )
    )

    props = spark8t.registry.get("default:bob").configurations.props

    assert props["spark.executorEnv.LOKI_URL"] == "http://loki:3100"
    assert props["spark.metrics.conf.*.sink.prometheus.class"] == "Sink"
    assert props["spark.kubernetes.authenticate.driver.serviceAccountName"] == "bob"


# -- latency and the concurrency limit (API Priority and Fairness) ----------------------------


def _concurrent_gets(server: KubeServer, count: int) -> list[httpx2.Response]:
    """`count` plain GETs (no retry) sent at the same moment, one thread each."""
    start = threading.Barrier(count)
    answers: list[httpx2.Response] = []

    def get() -> None:
        start.wait()
        answers.append(httpx2.get(f"{server.url}/api/v1/namespaces/default/secrets"))

    threads = [threading.Thread(target=get) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_latency_holds_every_request_and_requests_are_served_concurrently(
    kube_server: KubeServer,
):
    kube_server.latency = 0.3
    started = time.monotonic()
    answers = _concurrent_gets(kube_server, 4)
    assert [answer.status_code for answer in answers] == [200] * 4
    assert time.monotonic() - started >= 0.3
    assert kube_server.peak_in_flight == 4


def test_the_concurrency_limit_answers_429_with_retry_after(kube_server: KubeServer):
    kube_server.latency = 0.5
    kube_server.max_in_flight = 2
    kube_server.retry_after = 3
    answers = _concurrent_gets(kube_server, 5)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 200, 429, 429, 429]
    limited = [answer for answer in answers if answer.status_code == 429]
    assert all(answer.headers["Retry-After"] == "3" for answer in limited)
    assert all(answer.json()["reason"] == "TooManyRequests" for answer in limited)
    assert kube_server.rejected == 3
    assert kube_server.peak_in_flight == 2
    assert kube_server.count("GET") == 5
    assert sum(1 for record in kube_server.requests if record.status == 429) == 3


def test_watches_are_outside_the_concurrency_limit(kube_server: KubeServer, client: Client):
    kube_server.max_in_flight = 1
    url = f"{kube_server.url}/api/v1/namespaces/default/secrets?watch=true&timeoutSeconds=1"
    watcher = threading.Thread(target=lambda: httpx2.get(url, timeout=5))
    watcher.start()
    time.sleep(0.2)
    assert client.get(Namespace, "default").metadata is not None
    watcher.join()
    assert kube_server.rejected == 0
