"""The fuzzed world: one test API server, one charm, a cluster with foreign objects, and counts.

Every example runs real hooks of the charm (ops.testing) whose gateway talks, through the real
lightkube client, to one `KubeServer`. After each hook `World.check` asserts the invariants and
counts them per surface (`Counts`):

* no hook crashed (ops.testing raises for an uncaught exception);
* no hub Secret was lost: every Secret of an account still in scope is still there, and a hook
  that ends blocked or waiting (without an injected fault) changed no Secret's data;
* no foreign object was touched: a user's Secret with the hub's name (a conflict), spark8t's own
  `spark8t-sa-conf-*`, an unrelated Secret and a non-Spark account keep their resourceVersion;
* no credential (the canaries the strategies put into every credential field) appears in the
  Juju log, the status, action output or the store's files.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ops import testing

from core.config import ConfigError, HubConfig
from tests.charm.conftest import MODEL, make_context, workload
from tests.cluster.helpers import add_account, hub_secret
from tests.fuzz.counts import COUNTS_FILE
from tests.kube_server.faults import Fault
from tests.kube_server.server import KubeServer

CANARIES = ("CANARYa9f3e1", "CANARYb7c2d4", "CANARYc5e8f6")
"""Put into credential fields by the strategies; must never be seen outside a Secret."""

ACCOUNTS = (("team-a", "alice"), ("team-b", "bob"))
BASE_CONFIG = {"spark-properties": "spark.executor.memory=4g"}

FAULTS: dict[str, Callable[[], Fault] | None] = {
    "none": None,
    "503 once": lambda: Fault(status=503, times=1),
    "connection dropped once": lambda: Fault(drop_connection=True, times=1),
    "409 on a write": lambda: Fault(method="PUT", path_contains="/secrets/", status=409),
    "422 on every write": lambda: Fault(
        method="PUT", path_contains="/secrets/", status=422, times=-1
    ),
    "403 once": lambda: Fault(status=403, times=1),
}
"""The faults an example may run under (hypothesis picks one per example)."""


@dataclasses.dataclass
class Counts:
    """What the fuzzing did and found on one surface."""

    inputs: int = 0
    faults: int = 0
    hooks: int = 0
    crashes: int = 0
    secrets_lost: int = 0
    foreign_touched: int = 0
    credentials_found: int = 0
    statuses: dict[str, int] = dataclasses.field(default_factory=dict)
    """How many hooks ended in each Juju status (how much of the input was refused)."""


class World:
    """The server, the charm's context and storage, and the counts of every surface."""

    def __init__(self, server: KubeServer) -> None:
        self.server = server
        self.ctx = make_context()
        self.storage = testing.Storage("hub-state")
        self.counts: dict[str, Counts] = {}
        for namespace, name in (*ACCOUNTS, ("team-a", "carol")):
            add_account(server, namespace, name)
        self.foreign = [
            self._secret("team-a", "integrator-hub-conf-carol", {"user": "mine"}),
            self._secret("team-a", "spark8t-sa-conf-alice", {"spark.executor.cores": "2"}),
            self._secret("team-b", "unrelated", {"token": "not-ours"}),
            server.put(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "plain", "namespace": "team-b"},
                }
            ),
        ]
        self.run("setup", lambda on: on.config_changed(), config=BASE_CONFIG)
        del self.counts["setup"]

    def _secret(self, namespace: str, name: str, data: dict[str, str]) -> dict:
        return self.server.put(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            }
        )

    # -- running hooks --------------------------------------------------------------------------

    def state(self, config: dict[str, Any], relations=(), secrets=()) -> testing.State:
        """A leader unit's state with `config` and the given relations and secrets."""
        return testing.State(
            leader=True,
            model=MODEL,
            storages={self.storage},
            containers={workload()},
            config=config,
            relations=set(relations),
            secrets=set(secrets),
        )

    def run(
        self,
        surface: str,
        event: Callable[[Any], Any],
        *,
        config: dict[str, Any],
        relations=(),
        secrets=(),
        fault: str | Fault = "none",
        get_config: bool = False,
    ) -> testing.State:
        """Run one hook (and `get-config`, if asked) and check every invariant after it.

        `fault` names one of `FAULTS`, or is the fault itself.
        """
        counts = self.counts.setdefault(surface, Counts())
        counts.inputs += 1
        before = self._snapshot()
        self.server.clear_faults()
        made = fault if isinstance(fault, Fault) else FAULTS[fault]
        if made is not None:
            counts.faults += 1
            self.server.inject(made if isinstance(made, Fault) else made())
        state = self.state(config, relations, secrets)
        self.ctx.juju_log.clear()
        self.ctx.unit_status_history.clear()
        with self._counting_crash(counts):
            out = self.ctx.run(event(self.ctx.on), state)
        counts.hooks += 1
        counts.statuses[out.unit_status.name] = counts.statuses.get(out.unit_status.name, 0) + 1
        self.server.clear_faults()
        texts = [out.unit_status.message, *(line.message for line in self.ctx.juju_log)]
        if get_config:
            self.ctx.juju_log.clear()
            with self._counting_crash(counts):
                try:
                    self.ctx.run(self.ctx.on.action("get-config"), state)
                    texts.append(json.dumps(self.ctx.action_results))
                except testing.ActionFailed as failed:
                    texts.append(failed.message)
            texts += [line.message for line in self.ctx.juju_log]
            counts.hooks += 1
        self._check(counts, before, out, config, fault, texts)
        return out

    @contextmanager
    def _counting_crash(self, counts: Counts) -> Iterator[None]:
        try:
            yield
        except testing.errors.UncaughtCharmError:
            counts.crashes += 1
            raise

    # -- invariants -----------------------------------------------------------------------------

    def _snapshot(self) -> dict[tuple[str, str], dict | None]:
        return {account: hub_secret(self.server, *account) for account in ACCOUNTS}

    def _check(self, counts, before, out, config, fault, texts) -> None:
        lost = 0
        served = _scope(config)
        settled = out.unit_status.name in ("blocked", "waiting") and fault == "none"
        for account, old in before.items():
            new = hub_secret(self.server, *account)
            if old is None:
                continue
            if new is None and (served is None or served(*account)):
                lost += 1
            elif new is not None and settled and new.get("data") != old.get("data"):
                lost += 1
        touched = sum(1 for item in self.foreign if self._version(item) != _version(item))
        found = sum(1 for text in [*texts, self._store_text()] for c in CANARIES if c in text)
        counts.secrets_lost += lost
        counts.foreign_touched += touched
        counts.credentials_found += found
        assert lost == 0, f"a hub Secret was lost ({out.unit_status})"
        assert touched == 0, "a foreign object was written"
        assert found == 0, f"a credential leaked ({out.unit_status})"

    def _version(self, item: dict) -> str:
        metadata = item["metadata"]
        live = self.server.get(item["kind"], metadata["name"], metadata["namespace"])
        return _version(live) if live else ""

    def _store_text(self) -> str:
        directory = self.storage.get_filesystem(self.ctx)
        data = b"".join(path.read_bytes() for path in directory.glob("hub.sqlite3*"))
        return data.decode("latin-1")

    def write_counts(self) -> None:
        """Write the counts of every surface to `COUNTS_FILE` (read by `tests.fuzz.report`)."""
        COUNTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        COUNTS_FILE.write_text(
            json.dumps({name: dataclasses.asdict(c) for name, c in self.counts.items()}, indent=1)
        )


def _version(item: dict) -> str:
    return str(item.get("metadata", {}).get("resourceVersion", ""))


def _scope(config: dict[str, Any]) -> Callable[[str, str], bool] | None:
    """Which accounts a valid config serves (None: the config is invalid, nothing may go)."""
    try:
        return HubConfig.from_options(config).scope.includes
    except ConfigError:
        return None
