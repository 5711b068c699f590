"""Two hub applications on one cluster never write, adopt or delete each other's Secrets."""

import pytest

from core.cluster import Owner
from core.config import parse_scope
from hub import Hub
from k8s.gateway import KubeGateway
from reconciler import remove_owned
from store import Store
from tests.cluster.helpers import FAST, add_account, decoded, hub_secret, options, run

EAST = Owner("hub-east", "model-1")
WEST = Owner("hub-west", "model-2")


@pytest.fixture
def hubs(kube_server, kubeconfig, tmp_path):
    for namespace in ("east", "west"):
        for name in ("alice", "bob"):
            add_account(kube_server, namespace, name)
    made = [
        Hub(Store.open(tmp_path / f"{owner.app}.sqlite3"), KubeGateway(retry=FAST), owner)
        for owner in (EAST, WEST)
    ]
    yield made
    for hub in made:
        hub.close()


def writes_to(server, namespace):
    return sum(server.count(m, f"/namespaces/{namespace}/") for m in ("POST", "PUT", "DELETE"))


def test_each_hub_keeps_to_its_own_secrets(kube_server, hubs):
    east, west = hubs
    run(east, options(**{"spark.side": "east"}), parse_scope("east:*"))
    run(west, options(**{"spark.side": "west"}), parse_scope("west:*"))
    kube_server.clear_requests()
    run(east, options(**{"spark.side": "east-2"}), parse_scope("east:*"))
    assert writes_to(kube_server, "west") == 0
    assert decoded(hub_secret(kube_server, "west", "alice")) == {"spark.side": "west"}
    assert decoded(hub_secret(kube_server, "east", "alice")) == {"spark.side": "east-2"}


def test_overlapping_scopes_are_conflicts_not_writes(kube_server, hubs):
    east, west = hubs
    run(east, options(**{"spark.side": "east"}), parse_scope("east:*"))
    kube_server.clear_requests()
    report = run(west, options(**{"spark.side": "west"}))  # all namespaces
    assert report.message == "2 accounts in sync, 2 in conflict (see list-accounts)"
    assert writes_to(kube_server, "east") == 0
    assert {row["account"] for row in west.accounts(state="conflict")} == {
        "east:alice",
        "east:bob",
    }
    assert decoded(hub_secret(kube_server, "east", "bob")) == {"spark.side": "east"}


def test_neither_deletes_the_others_secrets(kube_server, hubs):
    east, west = hubs
    run(east, options(**{"spark.side": "east"}), parse_scope("east:*"))
    run(west, options(**{"spark.side": "west"}), parse_scope("west:*"))
    kube_server.clear_requests()
    # west narrows its scope to nothing of east's, then goes away entirely
    run(west, options(**{"spark.side": "west"}), parse_scope("west:alice"))
    deleted = kube_server.count("DELETE")
    assert remove_owned(west.gateway, WEST) == []  # nothing of west's left
    assert kube_server.count("DELETE") - deleted == 1
    assert writes_to(kube_server, "east") == 0
    assert hub_secret(kube_server, "east", "alice") is not None
    assert hub_secret(kube_server, "west", "alice") is None
    assert hub_secret(kube_server, "west", "bob") is None
