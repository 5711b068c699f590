"""The bench scenarios, for one size: the hub's passes, faults, memory, and the reference.

Each size gets a fresh test API server (`BenchCluster`) with its accounts seeded directly; the
hub is the real `Hub`, over a store in a temporary directory and a real `KubeGateway` that reads
`KUBECONFIG`. Requests are counted from the server's log. Seconds are wall time of the call,
which includes the in-process test server's own work (they share one interpreter).
"""

from __future__ import annotations

import cProfile
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.cluster import HASH_ANNOTATION, OWNER_ANNOTATION, SECRET_PREFIX
from core.config import MAX_CONCURRENT_WRITES_DEFAULT, Scope
from core.properties import SparkProperties
from hub import Hub, PassReport
from k8s import HookBudget, RetryPolicy
from k8s.gateway import KubeGateway
from machine import HubState
from store import Store
from tests.bench.cluster import (
    FOREIGN_OWNER,
    BenchCluster,
    Counts,
    accounts,
    encoded,
    namespace_of,
)
from tests.bench.reference import run_reference
from tests.cluster.helpers import OWNER, options
from tests.kube_server import Fault

ROOT = Path(__file__).resolve().parents[2]
FAST_RETRY = RetryPolicy(attempts=5, deadline=30.0, initial=0.01, maximum=0.05)
"""The fault scenario's retry policy: the production attempts and deadline, shorter waits."""
FAULT_RATE = 0.2
FAULT_PASSES = 3
"""Passes run while faults are injected, before they are cleared."""
MAX_PASSES = 10
"""Passes allowed after the faults are cleared, to converge."""
REFERENCE_DEADLINE = 180.0

BASE = {
    "spark.hadoop.fs.s3a.endpoint": "https://s3.example.com",
    "spark.hadoop.fs.s3a.access.key": "bench-access-key",
    "spark.hadoop.fs.s3a.secret.key": "bench-secret-key",
    "spark.hadoop.fs.s3a.path.style.access": "true",
    "spark.hadoop.fs.s3a.aws.credentials.provider": (
        "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    ),
    "spark.hadoop.fs.s3a.connection.ssl.enabled": "true",
    "spark.eventLog.enabled": "true",
    "spark.eventLog.dir": "s3a://bench-bucket/spark-events",
    "spark.history.fs.logDirectory": "s3a://bench-bucket/spark-events",
    "spark.kubernetes.file.upload.path": "s3a://bench-bucket/",
    "spark.sql.warehouse.dir": "s3a://bench-bucket/warehouse",
    "spark.executorEnv.LOKI_URL": "http://loki.example.com:3100/loki/api/v1/push",
    "spark.kubernetes.driverEnv.LOKI_URL": "http://loki.example.com:3100/loki/api/v1/push",
}
"""What a typical hub distributes (S3 and Loki); versions differ in one property."""


def desired(version: int) -> dict[str, str]:
    """The options of configuration `version`: `BASE` plus one property that changes."""
    return BASE | {"spark.executor.memory": f"{version}g"}


def merged(version: int) -> SparkProperties:
    """The properties configuration `version` renders to."""
    return SparkProperties.merge(options(**desired(version)))


@dataclass
class Measured:
    """One measured hub pass (or run): what the server saw and how long it took."""

    counts: Counts
    seconds: float
    state: str = ""
    wrong: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultResult:
    """The fault scenario's outcome."""

    injected: int
    requests: int
    writes_under_faults: list[int]
    states_under_faults: list[str]
    correct_under_faults: int
    passes_to_converge: int | None
    converged_state: str
    wrong: int
    deletes: int
    foreign_changed: int
    foreign_requests: int
    retries: int
    seconds: float


@dataclass
class MemoryResult:
    """The memory worker's outcome (one pass that rewrites every Secret, in a subprocess).

    `peak_rss_mb` is the worker's VmHWM; `maxrss_mb` its `ru_maxrss`, which Linux carries over
    from the parent across fork and exec (see `tests/bench/worker.py`).
    """

    peak_rss_mb: float
    maxrss_mb: float
    baseline_mb: float
    tracemalloc_peak_mb: float | None
    seconds: float
    writes: int
    state: str


@dataclass
class ReferenceResult:
    """The reference algorithm on the same change, measured or extrapolated."""

    requests: int
    writes: int
    deletes: int
    seconds: float
    handled: int
    extrapolated: bool
    wrong: int


@dataclass
class SizeResult:
    """Everything measured at one size."""

    size: int
    first: Measured
    steady: Measured
    change: Measured
    new_account: Measured
    drift: Measured
    rebuilt: Measured
    faults: FaultResult
    memory: MemoryResult
    reference: ReferenceResult
    seconds: float = 0.0


class Profiler:
    """Optionally profiles the hub's passes (cProfile), one stats file per pass."""

    def __init__(self, directory: Path | None) -> None:
        """Profile into `directory`, or not at all when it is None."""
        self.directory = directory

    def call(self, label: str, function: Callable[[], PassReport]) -> PassReport:
        """Run `function`, profiled when enabled, saving `<label>.pstats`."""
        if self.directory is None:
            return function()
        self.directory.mkdir(parents=True, exist_ok=True)
        profile = cProfile.Profile()
        try:
            return profile.runcall(function)
        finally:
            profile.dump_stats(self.directory / f"{label}.pstats")


PATIENT = RetryPolicy(attempts=8, deadline=60.0)
"""Retries for the latency benches' hubs: a 429 storm under the server's limit ends no pass."""


def open_hub(
    store_path: Path,
    retry: RetryPolicy = RetryPolicy(),
    writers: int = MAX_CONCURRENT_WRITES_DEFAULT,
    budget: HookBudget | None = None,
) -> Hub:
    """A hub over the store at `store_path`, with a real gateway reading KUBECONFIG.

    `budget` starts when the hub is opened, as a hook's does; none by default.
    """
    gateway = KubeGateway(retry=retry, budget=budget)
    return Hub(Store.open(store_path), gateway, OWNER, writers)


def one_pass(
    hub: Hub, cluster: BenchCluster, version: int, profiler: Profiler, label: str
) -> tuple[Measured, PassReport]:
    """Run one leader pass with configuration `version`; count it and check every Secret."""
    cluster.clear()
    results = options(**desired(version))
    start = time.perf_counter()
    report = profiler.call(
        f"{label}-{cluster.size}",
        lambda: hub.run_pass(results, Scope(), trigger="bench", leader=True),
    )
    seconds = time.perf_counter() - start
    counts = cluster.measure()
    wrong = cluster.wrong_secrets(merged(version), accounts(cluster.size))
    return Measured(counts, seconds, report.state.value, len(wrong)), report


def drift(hub: Hub, cluster: BenchCluster, version: int, profiler: Profiler) -> Measured:
    """Edit 1% of the Secrets by hand and delete another 1%, then run one pass."""
    refs = list(accounts(cluster.size))
    step = 100
    edited = refs[7::step]
    deleted = refs[53::step]
    secrets = cluster.hub_secrets()
    for ref in edited:
        secret = secrets[ref]
        key = next(iter(secret["data"]))
        secret["data"][key] = "ZWRpdGVkIGJ5IGhhbmQ="  # "edited by hand"
        cluster.server.put(secret)
    for namespace, name in deleted:
        cluster.server.delete("Secret", SECRET_PREFIX + name, namespace)
    before = {ref: _version(secret) for ref, secret in cluster.hub_secrets().items()}
    measured, _ = one_pass(hub, cluster, version, profiler, "drift")
    after = {ref: _version(secret) for ref, secret in cluster.hub_secrets().items()}
    written = {ref for ref, version in after.items() if before.get(ref) != version}
    measured.extra = {
        "edited": len(edited),
        "deleted": len(deleted),
        "exactly_those": written == set(edited) | set(deleted),
    }
    return measured


def _version(secret: dict) -> str:
    return secret["metadata"]["resourceVersion"]


def new_account(hub: Hub, cluster: BenchCluster, version: int, profiler: Profiler) -> Measured:
    """A new Spark account appears: one pass must create exactly its Secret."""
    cluster.add_account(namespace_of(0), "spark-user-new")
    measured, _ = one_pass(hub, cluster, version, profiler, "new-account")
    wrong = cluster.wrong_secrets(merged(version), [(namespace_of(0), "spark-user-new")])
    measured.wrong += len(wrong)
    return measured


def store_rebuilt(store_path: Path, cluster: BenchCluster, version: int) -> Measured:
    """Delete the store between passes; the next pass must write nothing."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    hub = open_hub(store_path)
    try:
        measured, _ = one_pass(hub, cluster, version, Profiler(None), "rebuilt")
    finally:
        hub.close()
    return measured


def seed_foreign(cluster: BenchCluster) -> list[tuple[str, str]]:
    """Seed Secrets another hub owns: three for Spark accounts of ours, two with no account."""
    foreign = []
    annotations = {OWNER_ANNOTATION: FOREIGN_OWNER, HASH_ANNOTATION: "0" * 64}
    for index in range(5):
        ref = (namespace_of(index), f"other-hub-user-{index}")
        if index < 3:
            cluster.add_account(*ref)  # a Spark account whose Secret is someone else's
        cluster.put_secret(*ref, {"spark.app.name": "not-ours"}, annotations)
        foreign.append(ref)
    return foreign


def inject_faults(cluster: BenchCluster) -> None:
    """20% of all requests fail: a third each 429, 503, and a dropped connection.

    The server tries faults in order, so the later probabilities are conditional ones that make
    each kind 1/3 of `FAULT_RATE` of all requests.
    """
    share = FAULT_RATE / 3
    kinds: list[dict[str, Any]] = [
        {"status": 429, "retry_after": 1},
        {"status": 503},
        {"drop_connection": True},
    ]
    for position, kind in enumerate(kinds):
        probability = share / (1 - share * position)
        cluster.server.inject(Fault(times=-1, probability=probability, **kind))


def faults(cluster: BenchCluster, store_path: Path, version: int) -> FaultResult:
    """A property change under 20% faults, then passes without faults until converged."""
    foreign = seed_foreign(cluster)
    before = cluster.snapshot(foreign)
    hub = open_hub(store_path, FAST_RETRY)
    results = options(**desired(version))
    log = []
    start = time.perf_counter()
    try:
        cluster.clear()
        inject_faults(cluster)
        writes, states = [], []
        for _ in range(FAULT_PASSES):
            report = hub.run_pass(results, Scope(), trigger="bench", leader=True)
            records = cluster.server.requests
            cluster.clear()
            log.extend(records)
            writes.append(Counts.of(records).writes)
            states.append(report.message)
        wrong_under = cluster.wrong_secrets(merged(version), accounts(cluster.size))
        cluster.server.clear_faults()
        converged_after = None
        for number in range(1, MAX_PASSES + 1):
            report = hub.run_pass(results, Scope(), trigger="bench", leader=True)
            if report.state is HubState.ACTIVE:
                converged_after = number
                break
        log.extend(cluster.server.requests)
        retries = len(hub.gateway.retries)
    finally:
        hub.close()
    seconds = time.perf_counter() - start
    names = {(ns, SECRET_PREFIX + name) for ns, name in foreign}
    touched = [
        r
        for r in log
        if r.method != "GET" and any(f"/namespaces/{ns}/secrets/{n}" in r.path for ns, n in names)
    ]
    after = cluster.snapshot(foreign)
    counts = Counts.of(log)
    return FaultResult(
        injected=sum(1 for r in log if r.status in (0, 429, 503)),
        requests=counts.requests,
        writes_under_faults=writes,
        states_under_faults=states,
        correct_under_faults=cluster.size - len(wrong_under),
        passes_to_converge=converged_after,
        converged_state=report.message,
        wrong=len(cluster.wrong_secrets(merged(version), accounts(cluster.size))),
        deletes=counts.deletes,
        foreign_changed=sum(1 for ref in foreign if before[ref] != after[ref]),
        foreign_requests=len(touched),
        retries=retries,
        seconds=seconds,
    )


def run_worker(cluster: BenchCluster, store_path: Path, version: int, trace: bool) -> dict:
    """Run `tests.bench.worker` for one pass with configuration `version`; its JSON answer."""
    command = [
        sys.executable,
        "-m",
        "tests.bench.worker",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--store",
        str(store_path),
    ]
    command += [f"--property={key}={value}" for key, value in desired(version).items()]
    if trace:
        command.append("--tracemalloc")
    path = os.pathsep.join(str(p) for p in (ROOT, ROOT / "src", ROOT / "lib"))
    env = os.environ | cluster.environment() | {"PYTHONPATH": path}
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory worker failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(cluster: BenchCluster, store_path: Path, version: int, trace: bool) -> MemoryResult:
    """Passes that rewrite every Secret, each in a worker process (the server stays here).

    The peak RSS comes from a run without tracemalloc (whose own bookkeeping would inflate it);
    the Python allocation peak, when `trace`, from a second run with the next configuration.
    """
    plain = run_worker(cluster, store_path, version, trace=False)
    traced = run_worker(cluster, store_path, version + 1, trace=True) if trace else {}
    return MemoryResult(
        peak_rss_mb=plain["peak_rss_mb"],
        maxrss_mb=plain["maxrss_mb"],
        baseline_mb=plain["baseline_mb"],
        tracemalloc_peak_mb=traced.get("tracemalloc_peak_mb"),
        seconds=plain["seconds"],
        writes=plain["writes"],
        state=plain["state"],
    )


def reference(size: int, workdir: Path, before: int, after: int) -> ReferenceResult:
    """The reference algorithm on a fresh server: configuration `before` → `after`."""
    cluster = BenchCluster(size, workdir)
    try:
        cluster.activate()
        old = merged(before).secret_data()
        for namespace, name in accounts(size):
            cluster.put_secret(namespace, name, old)
        cluster.clear()
        run = run_reference(merged(after).secret_data(), size, REFERENCE_DEADLINE)
        counts = cluster.measure()
        want = merged(after).secret_data()
        secrets = cluster.hub_secrets()
        wrong = sum(
            1
            for ref in accounts(size)
            if ref not in secrets or secrets[ref].get("data") != encoded(want)
        )
    finally:
        cluster.close()
    if not run.stopped_early:
        return ReferenceResult(
            counts.requests, counts.writes, counts.deletes, run.seconds, run.accounts, False, wrong
        )
    scale = size / max(run.accounts, 1)
    per_account = (counts.requests - counts.watches) / max(run.accounts, 1)
    return ReferenceResult(
        requests=round(counts.watches + per_account * size),
        writes=round(counts.writes * scale),
        deletes=round(counts.deletes * scale),
        seconds=run.seconds * scale,
        handled=run.accounts,
        extrapolated=True,
        wrong=wrong - (size - run.accounts),
    )


def run_size(size: int, workdir: Path, profiler: Profiler, trace: bool = True) -> SizeResult:
    """Every scenario at one size, on a fresh server."""
    started = time.perf_counter()
    cluster = BenchCluster(size, workdir)
    store_path = workdir / "hub.sqlite3"
    try:
        cluster.activate()
        hub = open_hub(store_path)
        try:
            first, _ = one_pass(hub, cluster, 1, profiler, "first")
            steady, _ = one_pass(hub, cluster, 1, profiler, "steady")
            change, _ = one_pass(hub, cluster, 2, profiler, "change")
            drifted = drift(hub, cluster, 2, profiler)
            created = new_account(hub, cluster, 2, profiler)
        finally:
            hub.close()
        cluster.server.delete("ServiceAccount", "spark-user-new", namespace_of(0))
        rebuilt = store_rebuilt(store_path, cluster, 2)
        faulted = faults(cluster, store_path, 3)
        used = memory(cluster, store_path, 4, trace)
    finally:
        cluster.close()
    ref = reference(size, workdir, 1, 2)
    result = SizeResult(size, first, steady, change, created, drifted, rebuilt, faulted, used, ref)
    result.seconds = time.perf_counter() - started
    return result
