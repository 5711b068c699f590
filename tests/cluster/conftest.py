"""Fixtures of the cluster tier."""

import pytest

from tests.cluster.helpers import ACCOUNTS, make_hub, seeded
from tests.cluster.watcher_process import start_watcher  # noqa: F401


@pytest.fixture
def cluster(kube_server, kubeconfig):
    return seeded(kube_server, ACCOUNTS)


@pytest.fixture
def hub(tmp_path, cluster):
    hub = make_hub(tmp_path / "hub.sqlite3")
    yield hub
    hub.close()
