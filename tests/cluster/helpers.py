"""Seeding and reading the test API server the way a cluster would look to the hub."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from core.cluster import Owner
from core.config import Scope
from core.properties import Contribution, Source, SparkProperties, decode_key
from hub import Hub
from k8s import RetryPolicy
from k8s.gateway import KubeGateway
from store import Store

OWNER = Owner("spark-integration-hub-k8s", "00000000-0000-4000-8000-000000000001")
FAST = RetryPolicy(attempts=4, deadline=5.0, initial=0.01, maximum=0.05)
ACCOUNTS = [("team-a", "alice"), ("team-a", "bob"), ("team-b", "carol")]
"""The accounts of the `cluster` fixture (tests/cluster/conftest.py)."""
SPARK8T = {"app.kubernetes.io/managed-by": "spark8t", "app.kubernetes.io/generated-by": "spark8t"}


def add_account(server, namespace: str, name: str, labels: dict | None = None) -> dict:
    """Put a Spark service account (as spark8t labels it) into the server."""
    return server.put(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or SPARK8T},
        }
    )


def seeded(server, accounts: Iterable[tuple[str, str]]):
    """`server` with these Spark accounts put in, and its request log cleared; returns it."""
    for namespace, name in accounts:
        add_account(server, namespace, name)
    server.clear_requests()
    return server


def hub_secret(server, namespace: str, name: str) -> dict | None:
    """The hub Secret of an account, as stored by the server."""
    return server.get("Secret", f"integrator-hub-conf-{name}", namespace)


def decoded(secret: dict) -> dict[str, str]:
    """Spark key → value of a hub Secret."""
    return {
        decode_key(k): base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()
    }


def options(**properties: str) -> list:
    """Source results carrying only operator options."""
    return [Contribution(Source.SPARK_PROPERTIES, properties)]


def properties(**values: str) -> SparkProperties:
    """Merged properties as `options` would render them."""
    return SparkProperties.merge(options(**values))


def make_hub(store_path, page_size: int = 500) -> Hub:
    """A hub over a store file, with a fast retry policy, talking to KUBECONFIG's server."""
    return Hub(Store.open(store_path), KubeGateway(retry=FAST, page_size=page_size), OWNER)


def run(hub: Hub, results, scope: Scope | None = None, **kwargs):
    """One leader pass."""
    return hub.run_pass(results, scope or Scope(), trigger="test", leader=True, **kwargs)
