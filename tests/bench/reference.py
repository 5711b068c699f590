"""The reference charm's algorithm, through lightkube directly, for comparison.

Faithful to the reference workload's watcher (``files/scripts/monitor_sa.py`` of
``canonical/spark-integration-hub-rock``): a change of configuration restarts the watcher,
whose watch on ``managed-by=spark8t`` ServiceAccounts in all namespaces starts with an
``ADDED`` event per account; for every such event it GETs ``integrator-hub-conf-<account>``,
DELETEs it, and POSTs it again (``stringData``, label ``managed-by=integration-hub``). That is
one watch request and three requests per account, and a window in which each account has no
Secret.

The reference logs every Secret it reads to stdout; that is not reproduced (it costs no request).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret, ServiceAccount

from core.cluster import SECRET_PREFIX, SPARK8T_SELECTOR

WATCH_TIMEOUT = 30
"""The reference watcher's ``server_timeout``."""


@dataclass(frozen=True)
class ReferenceRun:
    """How far one run of the reference algorithm got.

    Attributes:
        accounts: ADDED events handled (accounts whose Secret was recreated).
        seconds: wall time of the run.
        stopped_early: whether the deadline stopped it before every account was handled.
    """

    accounts: int
    seconds: float
    stopped_early: bool


def recreate(client: Client, namespace: str, account: str, data: Mapping[str, str]) -> None:
    """What the reference does for one ADDED account: GET, DELETE, then POST its Secret."""
    name = SECRET_PREFIX + account
    try:
        client.get(Secret, name=name, namespace=namespace)
        client.delete(Secret, name=name, namespace=namespace)
    except ApiError:
        pass  # the reference logs and carries on (a missing Secret is simply created)
    client.create(
        Secret.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
                },
                "stringData": dict(data),
            }
        )
    )


def run_reference(data: Mapping[str, str], expected: int, deadline: float) -> ReferenceRun:
    """Restart the reference watcher once and let it handle the initial ADDED burst.

    Args:
        data: the Secret data (encoded key → value) the new configuration produces.
        expected: how many accounts the watch will announce (the run ends after them).
        deadline: stop after this many seconds even if accounts remain (for extrapolation).

    Returns:
        How many accounts were handled, and how long it took.
    """
    client = Client(field_manager="integration-hub")
    handled = 0
    start = time.perf_counter()
    stream = client.watch(
        ServiceAccount, namespace="*", labels=SPARK8T_SELECTOR, server_timeout=WATCH_TIMEOUT
    )
    try:
        for operation, account in stream:
            if operation == "ADDED":
                meta = account.metadata
                recreate(client, meta.namespace, meta.name, data)
                handled += 1
            if handled >= expected or time.perf_counter() - start > deadline:
                break
    finally:
        stream.close()
        client.close()
    seconds = time.perf_counter() - start
    return ReferenceRun(handled, seconds, handled < expected)
