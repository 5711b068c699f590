"""One tenant's 403 (an exhausted Secret quota) is that tenant's error, not everyone's block.

A 403 on one account's write, when the access review shows nothing missing, is recorded
against that account (listed by `list-accounts`, counted in the status); the `juju trust`
block is only for permissions the review says are missing.
"""

from __future__ import annotations

import pytest

from core.config import Scope
from hub import Hub
from k8s.gateway import KubeGateway
from machine import HubState
from store import AccountState, Store
from tests.cluster.helpers import FAST, OWNER, add_account, decoded, hub_secret, options
from tests.kube_server import Fault

TENANTS = [(f"team-{index:02d}", "spark") for index in range(42)]
QUOTA = Fault(method="POST", path_contains="/namespaces/aaa-quota/secrets", status=403, times=-1)


@pytest.mark.parametrize("writers", [1, 8])
def test_a_tenant_out_of_quota_does_not_stop_every_other_rotation(
    kube_server, kubeconfig, tmp_path, writers
):
    for namespace, name in TENANTS:
        add_account(kube_server, namespace, name)
    hub = Hub(Store.open(tmp_path / "hub.sqlite3"), KubeGateway(retry=FAST), OWNER, writers)
    try:
        first = hub.run_pass(options(**{"spark.a": "1"}), Scope(), trigger="t", leader=True)
        assert first.state is HubState.ACTIVE
        add_account(kube_server, "aaa-quota", "spark")  # listed first; its Secret is refused
        kube_server.inject(QUOTA)

        report = hub.run_pass(options(**{"spark.a": "2"}), Scope(), trigger="t", leader=True)

        rotated = [decoded(hub_secret(kube_server, *tenant))["spark.a"] for tenant in TENANTS]
        assert rotated == ["2"] * len(TENANTS)
        assert "juju trust" not in report.message
        assert report.state is HubState.RECONCILING  # the error is retried, the rest served
        assert "42/43 accounts" in report.message, report.message
        (row,) = hub.accounts(state=AccountState.ERROR.value)
        assert row["account"] == "aaa-quota:spark"
        assert "forbidden" in row["last-error"].lower()
    finally:
        hub.close()


def test_a_missing_permission_still_blocks_naming_juju_trust(cluster, hub):
    cluster.denied = {("update", "secrets")}
    cluster.inject(Fault(method="PUT", status=403, times=-1))
    hub.run_pass(options(**{"spark.a": "1"}), Scope(), trigger="t", leader=True)
    report = hub.run_pass(options(**{"spark.a": "2"}), Scope(), trigger="t", leader=True)
    assert report.state is HubState.BLOCKED
    assert "juju trust" in report.message


def test_a_403_the_access_review_does_not_explain_is_retried_not_a_trust_block(cluster, hub):
    hub.run_pass(options(**{"spark.a": "1"}), Scope(), trigger="t", leader=True)
    cluster.inject(Fault(method="GET", path_contains="/api/v1/serviceaccounts", status=403))
    report = hub.run_pass(options(**{"spark.a": "2"}), Scope(), trigger="t", leader=True)
    assert report.state is HubState.RECONCILING
    assert "juju trust" not in report.message
    assert "403 from API" in report.message
