"""The real-time loop end to end: spark8t changes accounts, the watcher notices, the hub passes.

Every watch event on alice's hub Secret is recorded by an independent watch; from the moment it
first exists, no event may show it deleted or without its properties, whatever spark8t does to
the account's labels.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from urllib.parse import urlparse

import pytest

from core.properties import decode_key
from tests.cluster.helpers import make_hub, options, run

PROPS = {"spark.executor.memory": "4g", "spark.executorEnv.TEAM_NAME": "a"}


class SecretWatch(threading.Thread):
    """Records every watch event on one Secret until closed."""

    def __init__(self, url: str, namespace: str, name: str) -> None:
        super().__init__(daemon=True)
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        self.path = (
            f"/api/v1/namespaces/{namespace}/secrets?watch=true"
            f"&fieldSelector=metadata.name%3D{name}&timeoutSeconds=60"
        )
        self.events: list[tuple[str, dict[str, str]]] = []

    def run(self) -> None:
        self.connection.request("GET", self.path)
        response = self.connection.getresponse()
        try:
            for line in response:
                event = json.loads(line)
                data = event["object"].get("data") or {}
                decoded = {decode_key(k): base64.b64decode(v).decode() for k, v in data.items()}
                self.events.append((event["type"], decoded))
        except (OSError, ValueError, http.client.HTTPException):
            pass  # closed by the test

    def close(self) -> None:
        sock = self.connection.sock
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        self.join(timeout=5)
        self.connection.close()


@pytest.fixture
def namespace(kube_server):
    kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})


def test_relabels_never_leave_an_account_without_its_config(
    kube_server, kubeconfig, namespace, spark8t, start_watcher, tmp_path
):
    hub = make_hub(tmp_path / "hub.sqlite3")
    watcher = start_watcher()
    watch = SecretWatch(kube_server.url, "team-a", "integrator-hub-conf-alice")
    watch.start()
    seen = len(watcher.notices())

    def charm_wakes_up() -> None:
        """Wait for the watcher's next notice and run a pass, as the charm would."""
        nonlocal seen
        watcher.wait_for(lambda _: True, after=seen)
        time.sleep(0.1)  # let a burst settle into one notice
        seen = len(watcher.notices())
        run(hub, options(**PROPS))

    try:
        spark8t.create("alice", "team-a")
        charm_wakes_up()
        assert (
            spark8t.registry.get("team-a:alice").configurations.props["spark.executor.memory"]
            == "4g"
        )
        spark8t.registry.set_primary("team-a:alice", "team-a")
        spark8t.create("bob", "team-a")
        charm_wakes_up()
        spark8t.registry.set_primary("team-a:bob", "team-a")  # alice loses the primary label
        account = kube_server.get("ServiceAccount", "alice", "team-a")
        account["metadata"]["labels"]["team"] = "data"
        kube_server.put(account)
        run(hub, options(**PROPS))  # update-status, the backstop
        time.sleep(0.3)
    finally:
        watch.close()
        hub.close()
    assert watch.events, "the Secret was never written"
    assert watch.events[0][0] == "ADDED"
    for kind, data in watch.events:
        assert kind != "DELETED"
        assert data == PROPS
