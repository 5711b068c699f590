"""Fixtures of the cluster tier."""

import pytest

from tests.cluster.helpers import ACCOUNTS, add_account, make_hub
from tests.cluster.watcher_process import start_watcher  # noqa: F401


@pytest.fixture
def cluster(kube_server, kubeconfig):
    for namespace, name in ACCOUNTS:
        add_account(kube_server, namespace, name)
    kube_server.clear_requests()
    return kube_server


@pytest.fixture
def hub(tmp_path, cluster):
    hub = make_hub(tmp_path / "hub.sqlite3")
    yield hub
    hub.close()
