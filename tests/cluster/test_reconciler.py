"""The core loop through real lightkube against the test API server: writes, drift, faults."""

import pytest

from core.cluster import HASH_ANNOTATION, OWNER_ANNOTATION
from core.config import parse_scope
from machine import HubState
from store import AccountState
from tests.cluster.helpers import (
    ACCOUNTS,
    OWNER,
    add_account,
    decoded,
    hub_secret,
    make_hub,
    options,
    properties,
    run,
)
from tests.kube_server import Fault


def writes(server) -> int:
    return sum(server.count(method) for method in ("POST", "PUT", "PATCH", "DELETE"))


def test_first_pass_creates_one_owned_secret_per_account(cluster, hub):
    report = run(hub, options(**{"spark.executor.memory": "4g"}))
    assert report.state is HubState.ACTIVE
    assert report.message == "3 accounts in sync"
    assert cluster.count("POST", "/secrets") == 3
    assert writes(cluster) == 3
    for namespace, name in ACCOUNTS:
        secret = hub_secret(cluster, namespace, name)
        assert decoded(secret) == {"spark.executor.memory": "4g"}
        meta = secret["metadata"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "integration-hub"
        assert meta["annotations"][OWNER_ANNOTATION] == OWNER.annotation
        assert (
            meta["annotations"][HASH_ANNOTATION]
            == properties(**{"spark.executor.memory": "4g"}).hash
        )
        (reference,) = meta["ownerReferences"]
        account = cluster.get("ServiceAccount", name, namespace)
        assert reference["kind"] == "ServiceAccount"
        assert reference["uid"] == account["metadata"]["uid"]


def test_steady_state_is_two_lists_and_no_write(cluster, hub):
    run(hub, options(**{"spark.a": "1"}))
    cluster.clear_requests()
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.state is HubState.ACTIVE
    assert len(cluster.requests) == 2
    assert cluster.count("GET") == 2
    assert writes(cluster) == 0


def test_steady_state_pages(cluster, tmp_path):
    for number in range(7):
        add_account(cluster, "paged", f"user-{number}")
    hub = make_hub(tmp_path / "paged.sqlite3", page_size=4)
    run(hub, options(**{"spark.a": "1"}))
    cluster.clear_requests()
    run(hub, options(**{"spark.a": "1"}))
    # 10 accounts and 10 Secrets, 4 a page: 3 pages each, no writes.
    assert cluster.count("GET") == 6
    assert writes(cluster) == 0
    hub.close()


def test_a_changed_property_is_n_replaces_and_never_a_delete(cluster, hub):
    run(hub, options(**{"spark.a": "1"}))
    cluster.clear_requests()
    report = run(hub, options(**{"spark.a": "2", "spark.b": "3"}))
    assert report.outcome.writes == 3
    assert cluster.count("PUT", "/secrets/") == 3
    assert cluster.count("DELETE") == cluster.count("POST") == 0
    for namespace, name in ACCOUNTS:
        assert decoded(hub_secret(cluster, namespace, name)) == {"spark.a": "2", "spark.b": "3"}


def test_a_removed_property_is_gone_from_every_secret(cluster, hub):
    run(hub, options(**{"spark.a": "1", "spark.b": "2"}))
    run(hub, options(**{"spark.a": "1"}))
    assert decoded(hub_secret(cluster, "team-b", "carol")) == {"spark.a": "1"}


def test_edited_and_deleted_secrets_are_repaired_and_only_they_are_written(cluster, hub):
    run(hub, options(**{"spark.a": "1"}))
    edited = hub_secret(cluster, "team-a", "alice")
    edited["data"] = {"spark.a": "MA==", "foreign": "eA=="}  # hand edit, annotations kept
    cluster.put(edited)
    cluster.delete("Secret", "integrator-hub-conf-bob", "team-a")
    cluster.clear_requests()
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.state is HubState.ACTIVE
    assert cluster.count("PUT", "integrator-hub-conf-alice") == 1
    assert cluster.count("POST", "/team-a/secrets") == 1
    assert writes(cluster) == 2
    assert decoded(hub_secret(cluster, "team-a", "alice")) == {"spark.a": "1"}
    assert decoded(hub_secret(cluster, "team-a", "bob")) == {"spark.a": "1"}


@pytest.mark.parametrize("damage", ["deleted", "corrupt"])
def test_a_lost_store_causes_no_write(cluster, hub, tmp_path, damage):
    run(hub, options(**{"spark.a": "1"}))
    hub.close()
    for path in tmp_path.glob("hub.sqlite3*"):
        path.unlink()
    if damage == "corrupt":
        (tmp_path / "hub.sqlite3").write_bytes(b"\x00garbage" * 512)
    rebuilt = make_hub(tmp_path / "hub.sqlite3")
    cluster.clear_requests()
    report = run(rebuilt, options(**{"spark.a": "1"}))
    assert report.state is HubState.ACTIVE
    assert writes(cluster) == 0
    assert rebuilt.store.counts()[AccountState.IN_SYNC] == 3
    rebuilt.close()


def test_a_secret_of_another_owner_is_never_touched(cluster, hub):
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "integrator-hub-conf-alice",
            "namespace": "team-a",
            "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
            "annotations": {OWNER_ANNOTATION: "other-model/other-hub"},
        },
        "data": {"spark.a": "OQ=="},
    }
    cluster.put(foreign)
    unlabelled = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "integrator-hub-conf-bob", "namespace": "team-a"},
        "data": {"mine": "eQ=="},
    }
    cluster.put(unlabelled)
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.message == "1 accounts in sync, 2 in conflict (see list-accounts)"
    assert hub_secret(cluster, "team-a", "alice")["data"] == {"spark.a": "OQ=="}
    assert hub_secret(cluster, "team-a", "bob")["data"] == {"mine": "eQ=="}
    assert {row["account"] for row in hub.accounts(state="conflict")} == {
        "team-a:alice",
        "team-a:bob",
    }


def test_the_reference_charms_secret_is_adopted(cluster, hub):
    legacy = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "integrator-hub-conf-alice",
            "namespace": "team-a",
            "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
        },
        "data": {"spark.old": "eA=="},
    }
    cluster.put(legacy)
    run(hub, options(**{"spark.a": "1"}))
    adopted = hub_secret(cluster, "team-a", "alice")
    assert decoded(adopted) == {"spark.a": "1"}
    assert adopted["metadata"]["annotations"][OWNER_ANNOTATION] == OWNER.annotation


def test_a_secret_whose_account_is_gone_is_deleted(cluster, hub):
    run(hub, options(**{"spark.a": "1"}))
    account = cluster.get("ServiceAccount", "carol", "team-b")
    account["metadata"]["labels"] = {"app.kubernetes.io/generated-by": "spark8t"}
    cluster.put(account)  # no longer a Spark account
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.outcome.deletes == 1
    assert hub_secret(cluster, "team-b", "carol") is None
    assert [row["account"] for row in hub.accounts()] == ["team-a:alice", "team-a:bob"]


def test_scope_limits_the_accounts_served(cluster, hub):
    run(hub, options(**{"spark.a": "1"}))
    report = run(hub, options(**{"spark.a": "1"}), scope=parse_scope("team-a:*"))
    assert report.message == "2 accounts in sync"
    assert hub_secret(cluster, "team-b", "carol") is None


def test_rate_limits_and_server_errors_are_retried(cluster, hub):
    cluster.inject(Fault(method="GET", status=429, retry_after=1, times=1))
    cluster.inject(Fault(method="POST", status=503, times=2))
    cluster.inject(Fault(method="POST", drop_connection=True, times=1))
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.state is HubState.ACTIVE
    assert len(hub.gateway.retries) == 4
    assert all(hub_secret(cluster, ns, n) for ns, n in ACCOUNTS)


def test_a_stale_resource_version_is_reread_and_written_once_more(cluster, hub):
    run(hub, options(**{"spark.a": "1"}))
    cluster.inject(Fault(method="PUT", status=409, times=1))
    cluster.clear_requests()
    report = run(hub, options(**{"spark.a": "2"}))
    assert report.state is HubState.ACTIVE
    assert cluster.count("PUT") == 4
    assert cluster.count("GET", "/secrets/integrator-hub-conf-") == 1


def test_an_outage_stops_the_pass_and_the_next_pass_converges(cluster, hub):
    cluster.inject(Fault(method="POST", status=500, times=-1))
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.state is HubState.RECONCILING
    assert report.message.startswith("reconciling 0/3 accounts (retrying: 500 from API")
    assert hub.store.counts()[AccountState.ERROR] == 3
    cluster.clear_faults()
    assert run(hub, options(**{"spark.a": "1"})).state is HubState.ACTIVE


def test_a_proxys_error_page_on_a_list_is_an_outage_not_a_crash(cluster, hub):
    cluster.inject(Fault(method="GET", status=503, html=True, times=-1))
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.state is HubState.RECONCILING
    assert "503 from API (Service Unavailable)" in report.message
    cluster.clear_faults()
    assert run(hub, options(**{"spark.a": "1"})).state is HubState.ACTIVE


def test_a_proxys_error_page_on_a_write_fails_only_that_account(cluster, hub):
    run(hub, options(**{"spark.a": "1"}))
    namespace, name = ACCOUNTS[0]
    cluster.inject(Fault(method="PUT", path_contains=f"-{name}", status=400, html=True))
    report = run(hub, options(**{"spark.a": "2"}))
    assert hub.store.counts()[AccountState.INVALID] == 1
    assert hub.store.counts()[AccountState.IN_SYNC] == 2
    assert "Bad Request" in hub.store.applied()[f"{namespace}:{name}"].last_error
    assert report.state is not HubState.ACTIVE
    assert decoded(hub_secret(cluster, namespace, name)) == {"spark.a": "1"}


def test_missing_permissions_block_with_the_trust_command(cluster, hub):
    cluster.denied.add(("create", "secrets"))
    report = run(hub, options(**{"spark.a": "1"}), check_access=True)
    assert report.state is HubState.BLOCKED
    assert report.message == (
        "run `juju trust spark-integration-hub-k8s --scope=cluster` (missing: create secrets)"
    )
    assert cluster.count("POST", "/secrets") == 0
    cluster.denied.clear()
    assert run(hub, options(**{"spark.a": "1"})).state is HubState.ACTIVE


def test_a_forbidden_write_blocks_even_without_an_access_check(cluster, hub):
    cluster.denied.add(("list", "secrets"))
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.state is HubState.BLOCKED
    assert "missing: list secrets" in report.message


def test_a_failed_page_is_retried_alone_and_the_list_resumes(cluster, tmp_path):
    for number in range(7):
        add_account(cluster, "paged", f"user-{number}")
    hub = make_hub(tmp_path / "paged.sqlite3", page_size=3)
    cluster.inject(
        Fault(
            method="GET", path_contains="/serviceaccounts", status=503, probability=0.5, times=-1
        )
    )
    report = run(hub, options(**{"spark.a": "1"}))
    hub.close()
    assert report.state is HubState.ACTIVE
    pages = [r for r in cluster.requests if r.method == "GET" and "serviceaccounts" in r.path]
    answered = [r for r in pages if r.status == 200]
    assert len(answered) == 4  # 10 accounts, 3 a page: each page fetched once
    assert len(pages) > len(answered)  # some pages failed and were retried on their own
    assert len({r.query.get("continue") for r in answered}) == 4


def test_an_unlabelled_conflict_costs_no_request_until_rechecked(cluster, hub):
    users_own = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "integrator-hub-conf-bob", "namespace": "team-a"},
        "data": {"mine": "eQ=="},
    }
    cluster.put(users_own)
    run(hub, options(**{"spark.a": "1"}))
    refused = [r for r in cluster.requests if r.method == "POST" and r.status == 409]
    assert len(refused) == 1  # bob's create found the name taken
    assert [row["account"] for row in hub.accounts(state="conflict")] == ["team-a:bob"]
    cluster.clear_requests()
    report = run(hub, options(**{"spark.a": "1"}))
    assert len(cluster.requests) == 2  # the two lists: no create attempt for bob
    assert report.message == "2 accounts in sync, 1 in conflict (see list-accounts)"
    cluster.delete("Secret", "integrator-hub-conf-bob", "team-a")
    run(hub, options(**{"spark.a": "1"}), recheck_conflicts=True)
    assert decoded(hub_secret(cluster, "team-a", "bob")) == {"spark.a": "1"}
    assert hub.accounts(state="conflict") == []
