"""Bounded concurrent writes through real lightkube: every guarantee of the sequential applier.

Each test counts requests, DELETEs and final data; none asserts a duration.
"""

import threading

import pytest

from core.config import Scope
from hub import Hub
from k8s import RetryPolicy
from k8s.gateway import KubeGateway
from machine import HubState
from reconciler import LOOKAHEAD
from store import AccountState, Store
from tests.cluster.helpers import OWNER, decoded, hub_secret, options, run, seeded
from tests.kube_server import Fault

ACCOUNTS = [(f"team-{n % 4}", f"user-{n:03d}") for n in range(40)]
PATIENT = RetryPolicy(attempts=8, deadline=30.0, initial=0.01, maximum=1.0)


@pytest.fixture
def many(kube_server, kubeconfig):
    return seeded(kube_server, ACCOUNTS)


def concurrent_hub(tmp_path, writers: int, retry: RetryPolicy = PATIENT) -> Hub:
    return Hub(
        Store.open(tmp_path / f"hub-{writers}.sqlite3"),
        KubeGateway(retry=retry),
        OWNER,
        max_concurrent_writes=writers,
    )


def store_rows(hub: Hub) -> dict[str, tuple[str, str]]:
    return {key: (row.state.value, row.last_error) for key, row in hub.store.applied().items()}


def test_a_change_is_exactly_n_replaces_written_concurrently(many, tmp_path):
    hub = concurrent_hub(tmp_path, 8)
    assert run(hub, options(**{"spark.a": "1"})).state is HubState.ACTIVE
    many.clear_requests()
    many.latency = 0.02
    many.peak_in_flight = 0
    report = run(hub, options(**{"spark.a": "2"}))
    assert report.state is HubState.ACTIVE
    assert report.message == "40 accounts in sync"
    assert many.count("PUT") == 40
    assert many.count("POST") == many.count("DELETE") == 0
    assert many.count("GET") == 2
    assert 1 < many.peak_in_flight <= 8
    assert all(decoded(hub_secret(many, ns, n)) == {"spark.a": "2"} for ns, n in ACCOUNTS)
    hub.close()


def test_each_pass_reuses_the_connections_of_the_pass_before(many, tmp_path):
    hub = concurrent_hub(tmp_path, 8)
    many.latency = 0.005
    for version in range(1, 5):
        assert run(hub, options(**{"spark.a": str(version)})).state is HubState.ACTIVE
    # one per writer thread and one for the lists, whatever the number of passes
    assert many.connections_opened <= 8 + 1
    hub.close()


def test_no_moment_without_a_secret_while_writing_concurrently(many, tmp_path):
    hub = concurrent_hub(tmp_path, 8)
    run(hub, options(**{"spark.a": "1"}))
    many.latency = 0.01
    missing: list[tuple[str, str]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            missing.extend(a for a in ACCOUNTS if hub_secret(many, *a) is None)

    checker = threading.Thread(target=watch)
    checker.start()
    run(hub, options(**{"spark.a": "2"}))
    done.set()
    checker.join()
    assert missing == []
    hub.close()


def test_concurrent_and_sequential_passes_record_the_same_outcome(many, tmp_path):
    """Same faults, same answers: status and store rows do not depend on completion order."""
    reports, rows = [], []
    for writers in (1, 8):
        for namespace, name in ACCOUNTS:
            many.delete("Secret", f"integrator-hub-conf-{name}", namespace)
        many.clear_faults()
        many.inject(Fault(method="POST", path_contains="/team-1/", status=422, times=-1))
        hub = concurrent_hub(tmp_path, writers)
        reports.append(run(hub, options(**{"spark.a": "1"})))
        rows.append(store_rows(hub))
        hub.close()
    # 422 is the API server refusing those Secrets: blocked, those accounts `invalid`
    assert reports[0].state is reports[1].state is HubState.BLOCKED
    assert reports[0].message == reports[1].message
    assert rows[0] == rows[1]
    assert sum(1 for state, _ in rows[1].values() if state == "invalid") == 10


def test_a_stale_version_is_reread_once_per_account(many, tmp_path):
    hub = concurrent_hub(tmp_path, 8)
    run(hub, options(**{"spark.a": "1"}))
    for _, name in ACCOUNTS[5:10]:
        many.inject(Fault(method="PUT", path_contains=f"-{name}", status=409, times=1))
    many.clear_requests()
    assert run(hub, options(**{"spark.a": "2"})).state is HubState.ACTIVE
    assert many.count("PUT") == 45
    assert many.count("GET", "/secrets/integrator-hub-conf-") == 5
    assert many.count("DELETE") == 0
    hub.close()


def test_the_breaker_stops_new_writes_and_records_every_write_in_flight(many, tmp_path):
    hub = concurrent_hub(tmp_path, 4, RetryPolicy(attempts=1, initial=0.01, maximum=0.01))
    many.inject(Fault(method="POST", status=503, times=-1))
    report = run(hub, options(**{"spark.a": "1"}))
    assert report.state is HubState.RECONCILING
    counts = hub.store.counts()
    # the breaker trips at the 3rd error in plan order; at most LOOKAHEAD × 4 steps had started
    assert many.count("POST") <= 3 + LOOKAHEAD * 4 - 1
    assert counts[AccountState.ERROR] == many.count("POST")
    assert counts[AccountState.PENDING] == 40 - many.count("POST")
    hub.close()


def test_the_servers_limit_costs_only_the_retries_its_429s_caused(many, tmp_path):
    hub = concurrent_hub(tmp_path, 8)
    run(hub, options(**{"spark.a": "1"}))
    many.clear_requests()
    many.latency = 0.02
    many.max_in_flight = 3
    many.retry_after = 1
    report = run(hub, options(**{"spark.a": "2"}), Scope())
    assert report.state is HubState.ACTIVE
    assert many.rejected > 0
    assert len(many.requests) == 2 + 40 + many.rejected
    assert many.count("PUT") == 40 + sum(1 for r in many.requests if r.status == 429)
    assert len(hub.gateway.retries) == many.rejected
    assert many.count("DELETE") == 0
    hub.close()
