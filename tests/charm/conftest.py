"""ops.testing fixtures: the charm's Context, a fixed model, storage and the workload container.

The charm's Kubernetes gateway reads `KUBECONFIG` from the environment, so these tests drive the
real lightkube client against the test API server (the `kubeconfig` fixture), with Juju itself
stood in for by ops.testing.
"""

from pathlib import Path

import ops
import pytest
from ops import testing

from charm import SparkIntegrationHubCharm
from tests.cluster.helpers import seeded
from workload import CHECK, LAYER, SERVICE, watcher_layer

ROOT = Path(__file__).parents[2]
MODEL = testing.Model(name="spark", uuid="00000000-0000-4000-8000-000000000001")
OWNER = f"{MODEL.uuid}/spark-integration-hub-k8s"


def make_context(unit_id: int = 0) -> testing.Context:
    """The charm's Context for one unit; ops.testing reads the charm's own charmcraft.yaml."""
    return testing.Context(
        SparkIntegrationHubCharm,
        app_name="spark-integration-hub-k8s",
        unit_id=unit_id,
    )


@pytest.fixture
def ctx():
    return make_context()


@pytest.fixture
def cluster(kube_server, kubeconfig):
    """The test API server with one account the hub serves, team-a:bob; no request logged yet.

    Modules that need other accounts define their own `cluster`.
    """
    return seeded(kube_server, [("team-a", "bob")])


@pytest.fixture
def storage():
    return testing.Storage("hub-state")


def workload(**changes) -> testing.Container:
    """The workload container with the watcher installed, running and healthy."""
    values = {
        "can_connect": True,
        "layers": {LAYER: ops.pebble.Layer(watcher_layer(OWNER, {}))},
        "service_statuses": {SERVICE: ops.pebble.ServiceStatus.ACTIVE},
        "check_infos": {testing.CheckInfo(CHECK, level="alive")},
    }
    values.update(changes)
    return testing.Container("integration-hub", **values)


@pytest.fixture
def base_state(storage):
    """A leader unit with its storage attached and its workload reachable."""

    def make(**changes) -> testing.State:
        values = {
            "leader": True,
            "model": MODEL,
            "storages": {storage},
            "containers": {workload()},
            "config": {},
        }
        values.update(changes)
        return testing.State(**values)

    return make
