"""A hook's time budget against a slow and a rate-limiting API, on the real clock.

The budget must bound the hook itself, not only its retries: a request sent late in the budget
is cut when the budget ends (not `REQUEST_TIMEOUT` later), and a `Retry-After` pause that would
outlast the budget is not waited for. Each test checks the hook returned before the server
would have answered, which only that bound explains; none measures a duration otherwise.
"""

import time

import pytest

from core.config import Scope
from hub import Hub
from k8s import HookBudget, RetryPolicy, UnavailableError
from k8s.gateway import REQUEST_TIMEOUT, KubeGateway
from machine import HubState
from store import AccountState, Store
from tests.cluster.helpers import OWNER, decoded, hub_secret, options, run, seeded

ACCOUNTS = [(f"team-{n % 2}", f"user-{n:02d}") for n in range(12)]
PATIENT = RetryPolicy(attempts=8, deadline=30.0, initial=0.01, maximum=10.0)


@pytest.fixture
def accounts(kube_server, kubeconfig):
    return seeded(kube_server, ACCOUNTS)


def test_a_slow_request_is_cut_when_the_budget_ends(accounts):
    accounts.latency = 1.0
    gateway = KubeGateway(budget=HookBudget(0.2))
    started = time.monotonic()
    with pytest.raises(UnavailableError, match=r"hook time budget spent \(0.2 s\)"):
        gateway.list_accounts()
    assert time.monotonic() - started < accounts.latency < REQUEST_TIMEOUT
    with pytest.raises(UnavailableError, match="hook time budget spent"):
        gateway.list_hub_secrets()  # the breaker is open: nothing more is sent
    time.sleep(accounts.latency * 2)  # the server logs the cut request once it has answered it
    assert len(accounts.requests) == 1
    gateway.close()


def test_a_retry_after_beyond_the_budget_ends_the_pass_with_the_rest_pending(accounts, tmp_path):
    store = Store.open(tmp_path / "hub.sqlite3")
    hub = Hub(store, KubeGateway(retry=PATIENT), OWNER, max_concurrent_writes=4)
    run(hub, options(**{"spark.a": "1"}))
    hub.close()
    accounts.latency = 0.05
    accounts.max_in_flight = 1
    accounts.retry_after = 6
    budgeted = Hub(
        Store.open(tmp_path / "hub.sqlite3"),
        KubeGateway(retry=PATIENT, budget=HookBudget(2.0)),
        OWNER,
        max_concurrent_writes=4,
    )
    started = time.monotonic()
    report = run(budgeted, options(**{"spark.a": "2"}), Scope())
    assert time.monotonic() - started < accounts.retry_after
    assert report.state is HubState.RECONCILING
    rows = budgeted.store.applied()
    done = {key for key, row in rows.items() if row.state is AccountState.IN_SYNC}
    assert len(done) < len(ACCOUNTS)
    for key in rows.keys() - done:  # left for the next pass: not started, or cut short
        assert rows[key].state in (AccountState.PENDING, AccountState.ERROR)
        assert rows[key].state is AccountState.PENDING or "rate-limited" in rows[key].last_error
    for namespace, name in ACCOUNTS:  # every account still has its Secret, old or new
        assert decoded(hub_secret(accounts, namespace, name))["spark.a"] in ("1", "2")
    assert accounts.count("DELETE") == 0
    budgeted.close()
