"""A test Kubernetes API server seeded for the bench, and what the bench reads back from it.

Everything is seeded directly (``KubeServer.put``, no HTTP, not logged), and every count the
bench reports comes from the server's own request log, never from the client, so the numbers do
not depend on how the hub counts its calls.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.cluster import HASH_ANNOTATION, OWNER_ANNOTATION, SECRET_PREFIX
from core.properties import SparkProperties
from tests.bench.remote import RemoteKubeServer
from tests.cluster.helpers import OWNER, SPARK8T
from tests.kube_server import KubeServer, RequestRecord

NAMESPACES = 20
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FOREIGN_OWNER = "11111111-1111-4111-8111-111111111111/another-hub"


def namespace_of(index: int) -> str:
    """The namespace of the `index`-th seeded account (accounts are spread round-robin)."""
    return f"spark-ns-{index % NAMESPACES:02d}"


def account_name(index: int) -> str:
    """The name of the `index`-th seeded account."""
    return f"spark-user-{index:05d}"


def accounts(size: int) -> Iterator[tuple[str, str]]:
    """(namespace, name) of the `size` seeded accounts."""
    for index in range(size):
        yield namespace_of(index), account_name(index)


def encoded(data: dict[str, str]) -> dict[str, str]:
    """Base64 values, as a Secret's `data` holds them."""
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


@dataclass(frozen=True)
class Counts:
    """What the server saw during one measured step.

    Attributes:
        requests: every request (watches included).
        pages: list requests carrying a `continue` token (pagination pages after the first).
        writes: POST, PUT, PATCH and DELETE requests on Secrets.
        deletes: DELETE requests on Secrets.
        posts: POST requests on Secrets.
        puts: PUT requests on Secrets.
        lists: GET requests on a collection without `continue` (first pages).
        watches: watch requests.
        failed: requests answered with a status >= 400, or dropped (status 0).
    """

    requests: int
    pages: int
    writes: int
    deletes: int
    posts: int
    puts: int
    lists: int
    watches: int
    failed: int

    @property
    def excluding_pages(self) -> int:
        """Requests, not counting pagination pages after the first."""
        return self.requests - self.pages

    @classmethod
    def of(cls, log: Iterable[RequestRecord]) -> Counts:
        """Count a request log."""
        records = list(log)
        secrets = [r for r in records if "/secrets" in r.path]
        return cls(
            requests=len(records),
            pages=sum(1 for r in records if "continue" in r.query),
            writes=sum(1 for r in secrets if r.method in WRITE_METHODS),
            deletes=sum(1 for r in secrets if r.method == "DELETE"),
            posts=sum(1 for r in secrets if r.method == "POST"),
            puts=sum(1 for r in secrets if r.method == "PUT"),
            lists=sum(1 for r in records if _is_first_list_page(r)),
            watches=sum(1 for r in records if r.watch),
            failed=sum(1 for r in records if r.status == 0 or r.status >= 400),
        )


def _is_first_list_page(record: RequestRecord) -> bool:
    collection = record.path.rstrip("/").rsplit("/", 1)[-1] in {"secrets", "serviceaccounts"}
    return (
        record.method == "GET"
        and collection
        and not record.watch
        and ("continue" not in record.query)
    )


class BenchCluster:
    """A started KubeServer with `size` Spark accounts, and a kubeconfig pointing at it."""

    def __init__(self, size: int, workdir: Path, separate_process: bool = False) -> None:
        """Start a fresh server and seed `size` accounts over `NAMESPACES` namespaces.

        Args:
            size: how many Spark service accounts to seed.
            workdir: a directory for the kubeconfig (and whatever else the caller puts there).
            separate_process: run the server in a child process (`RemoteKubeServer`), as a
                real API server runs apart from the hub; in this process otherwise.
        """
        self.size = size
        self.workdir = workdir
        self.server: KubeServer | RemoteKubeServer = (
            RemoteKubeServer() if separate_process else KubeServer().start()
        )
        for namespace, name in accounts(size):
            self.add_account(namespace, name)
        self.kubeconfig = self.server.write_kubeconfig(workdir / "kubeconfig")
        self.server.clear_requests()

    def close(self) -> None:
        """Stop the server."""
        self.server.stop()

    def environment(self) -> dict[str, str]:
        """The environment a client of this server runs with (KUBECONFIG, no proxy)."""
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"]))
        return {"KUBECONFIG": str(self.kubeconfig), "NO_PROXY": no_proxy, "no_proxy": no_proxy}

    def activate(self) -> None:
        """Point this process's clients at the server (lightkube reads KUBECONFIG)."""
        os.environ.update(self.environment())

    # -- seeding ------------------------------------------------------------------------------

    def add_account(self, namespace: str, name: str) -> dict:
        """Seed a Spark service account, labelled as spark8t labels it."""
        return self.server.put(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(SPARK8T)},
            }
        )

    def put_secret(
        self,
        namespace: str,
        account: str,
        data: dict[str, str],
        annotations: dict[str, str] | None = None,
    ) -> dict:
        """Seed a hub-labelled Secret for `account` (a foreign one, or the reference's)."""
        metadata: dict = {
            "name": SECRET_PREFIX + account,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "integration-hub"},
        }
        if annotations:
            metadata["annotations"] = annotations
        return self.server.put(
            {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": encoded(data)}
        )

    # -- reading back -------------------------------------------------------------------------

    def measure(self) -> Counts:
        """Count the request log since the last `clear` (and clear it)."""
        counts = Counts.of(self.server.requests)
        self.server.clear_requests()
        return counts

    def clear(self) -> None:
        """Forget the request log."""
        self.server.clear_requests()

    def hub_secrets(self) -> dict[tuple[str, str], dict]:
        """Every Secret named like a hub Secret, by (namespace, account)."""
        return {
            (s["metadata"]["namespace"], s["metadata"]["name"].removeprefix(SECRET_PREFIX)): s
            for s in self.server.list("Secret")
            if s["metadata"]["name"].startswith(SECRET_PREFIX)
        }

    def wrong_secrets(
        self, desired: SparkProperties, refs: Iterable[tuple[str, str]]
    ) -> list[str]:
        """The accounts among `refs` whose Secret is missing, not ours, or not `desired`."""
        want_data = encoded(desired.secret_data())
        secrets = self.hub_secrets()
        wrong = []
        for ref in refs:
            secret = secrets.get(ref)
            annotations = (secret or {}).get("metadata", {}).get("annotations") or {}
            if (
                secret is None
                or secret.get("data") != want_data
                or annotations.get(OWNER_ANNOTATION) != OWNER.annotation
                or annotations.get(HASH_ANNOTATION) != desired.hash
            ):
                wrong.append(":".join(ref))
        return wrong

    def snapshot(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The stored JSON of the hub Secrets of `refs` (to prove they were not touched)."""
        secrets = self.hub_secrets()
        return {ref: json.dumps(secrets.get(ref), sort_keys=True) for ref in refs}
