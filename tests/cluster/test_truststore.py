"""The S3 CA truststore: one Secret per served namespace, binary-exact, kept and removed."""

import base64

from core.config import parse_scope
from machine import HubState
from render.s3 import TrustStore
from tests.cluster.helpers import options, run

NAME = "integration-hub-truststore"
FILES = {"truststore.p12": b"\x30\x82\x00\xff binary", "ca.pem": b"-----BEGIN CERTIFICATE-----"}
STORE = TrustStore(NAME, "/etc/spark/truststore", FILES)
PROPS = options(**{"spark.a": "1"})


def files_in(server, namespace):
    secret = server.get("Secret", NAME, namespace)
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
    rotated = TrustStore(NAME, STORE.mount_path, {**FILES, "ca.pem": b"new"})
    run(hub, PROPS, truststore=rotated)
    assert cluster.count("PUT", f"/secrets/{NAME}") == 2
    assert files_in(cluster, "team-b")["ca.pem"] == b"new"
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
