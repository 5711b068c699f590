"""The S3 CA truststore: one Secret per served namespace, binary-exact, kept, moved and removed."""

import base64

from core.cluster import LEGACY_TRUSTSTORE_SECRET, TRUSTSTORE_SECRET
from core.config import parse_scope
from machine import HubState
from render.s3 import TrustStore
from store import AccountState
from tests.cluster.helpers import OWNER, add_account, options, run
from tests.kube_server import Fault

NAME = TRUSTSTORE_SECRET
FILES = {"truststore.p12": b"\x30\x82\x00\xff binary"}
STORE = TrustStore(NAME, f"/etc/spark8t/conf/{NAME}", FILES)
PROPS = options(**{"spark.a": "1"})


def files_in(server, namespace, name=NAME):
    secret = server.get("Secret", name, namespace)
    if secret is None:
        return None
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def test_every_served_namespace_gets_the_exact_truststore(cluster, hub):
    report = run(hub, PROPS, truststore=STORE)
    assert report.state is HubState.ACTIVE
    assert files_in(cluster, "team-a") == files_in(cluster, "team-b") == FILES
    assert cluster.count("POST", "/secrets") == 3 + 2
    cluster.clear_requests()
    run(hub, PROPS, truststore=STORE)
    assert cluster.count("POST") == cluster.count("PUT") == cluster.count("DELETE") == 0


def test_a_new_ca_replaces_and_a_gone_ca_deletes(cluster, hub):
    run(hub, PROPS, truststore=STORE)
    cluster.clear_requests()
    rotated = TrustStore(NAME, STORE.mount_path, {"truststore.p12": b"new"})
    run(hub, PROPS, truststore=rotated)
    assert cluster.count("PUT", f"/secrets/{NAME}") == 2
    assert files_in(cluster, "team-b") == {"truststore.p12": b"new"}
    cluster.clear_requests()
    run(hub, PROPS, truststore=None)
    assert cluster.count("DELETE", f"/secrets/{NAME}") == 2
    assert files_in(cluster, "team-a") is None


def test_a_namespace_no_longer_served_loses_it(cluster, hub):
    run(hub, PROPS, truststore=STORE)
    run(hub, PROPS, parse_scope("team-a:*"), truststore=STORE)
    assert files_in(cluster, "team-a") == FILES
    assert files_in(cluster, "team-b") is None


def test_someone_elses_truststore_is_left_alone(cluster, hub):
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": NAME,
                "namespace": "team-b",
                "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
                "annotations": {"integration-hub/owner": "other/hub"},
            },
            "data": {"ca.pem": base64.b64encode(b"theirs").decode()},
        }
    )
    run(hub, PROPS, truststore=STORE)
    assert files_in(cluster, "team-b") == {"ca.pem": b"theirs"}
    run(hub, PROPS, truststore=None)
    assert files_in(cluster, "team-b") == {"ca.pem": b"theirs"}
    assert files_in(cluster, "team-a") is None


def legacy(server, namespace: str) -> None:
    """Our truststore under the name the hub used before Kyuubi read it from the manifest."""
    server.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": LEGACY_TRUSTSTORE_SECRET,
                "namespace": namespace,
                "labels": OWNER.labels,
                "annotations": {"integration-hub/owner": OWNER.annotation},
            },
            "data": {"truststore.p12": base64.b64encode(b"old").decode()},
        }
    )


def test_the_old_truststore_goes_only_after_the_properties_mount_the_new_one(cluster, hub):
    legacy(cluster, "team-a")
    legacy(cluster, "team-b")
    cluster.clear_requests()

    run(hub, PROPS, truststore=STORE)

    trail = [(r.method, r.path.rsplit("/", 1)[-1]) for r in cluster.requests]
    created = [i for i, (method, _) in enumerate(trail) if method == "POST"]
    deleted = [i for i, call in enumerate(trail) if call == ("DELETE", LEGACY_TRUSTSTORE_SECRET)]
    assert len(deleted) == 2 and min(deleted) > max(created)
    assert files_in(cluster, "team-a", LEGACY_TRUSTSTORE_SECRET) is None
    assert files_in(cluster, "team-b") == FILES


def test_the_old_truststore_stays_while_an_account_of_its_namespace_is_not_written(cluster, hub):
    run(hub, PROPS, truststore=STORE)
    legacy(cluster, "team-a")
    legacy(cluster, "team-b")
    cluster.inject(Fault(method="PUT", path_contains="integrator-hub-conf-carol", status=422))

    run(hub, options(**{"spark.a": "2"}), truststore=STORE)

    assert files_in(cluster, "team-a", LEGACY_TRUSTSTORE_SECRET) is None
    assert files_in(cluster, "team-b", LEGACY_TRUSTSTORE_SECRET) == {"truststore.p12": b"old"}
    assert hub.store.applied()["team-b:carol"].state is AccountState.INVALID


def test_an_account_named_like_the_truststore_is_a_conflict_never_written(cluster, hub):
    add_account(cluster, "team-a", "truststore")
    run(hub, PROPS, truststore=STORE)
    assert files_in(cluster, "team-a") == FILES
    assert hub.store.applied()["team-a:truststore"].state is AccountState.CONFLICT
