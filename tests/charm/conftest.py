"""ops.testing fixtures: the charm's Context, a fixed model, storage and the workload container.

The charm's Kubernetes gateway reads `KUBECONFIG` from the environment, so these tests drive the
real lightkube client against the test API server (the `kubeconfig` fixture), with Juju itself
stood in for by ops.testing.
"""

from pathlib import Path

import pytest
import yaml
from ops import testing

from charm import SparkIntegrationHubCharm

ROOT = Path(__file__).parents[2]
MODEL = testing.Model(name="spark", uuid="00000000-0000-4000-8000-000000000001")


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.fixture
def ctx():
    return testing.Context(
        SparkIntegrationHubCharm,
        meta=load("charmcraft.yaml"),
        config=load("config.yaml"),
        actions=load("actions.yaml"),
        app_name="spark-integration-hub-k8s",
        unit_id=0,
    )


@pytest.fixture
def storage():
    return testing.Storage("hub-state")


@pytest.fixture
def base_state(storage):
    """A leader unit with its storage attached and its workload reachable."""

    def make(**changes) -> testing.State:
        values = {
            "leader": True,
            "model": MODEL,
            "storages": {storage},
            "containers": {testing.Container("integration-hub", can_connect=True)},
            "config": {},
        }
        values.update(changes)
        return testing.State(**values)

    return make
