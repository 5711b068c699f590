"""The reconciler: observe the cluster, plan each account, apply the plan, record the outcome.

* **observe** — two list calls (Spark accounts, hub Secrets), paginated.
* **plan** — pure: for every account, create, update (ours but not in sync), adopt (the
  reference charm's), in sync, conflict (someone else's), or delete (ours, but the account is
  gone or out of scope). An account is in sync only when its Secret is ours and its *live data*
  hashes to the desired hash, so hand edits are seen even when annotations were left alone.
* **apply** — one write per account that needs one: create, or replace at the observed
  resourceVersion (never delete-then-create, so no account is ever without its Secret). A 409
  re-reads that one Secret and tries again once. After `BREAKER` consecutive unavailable
  errors the pass stops and leaves the rest pending, so an API outage never hangs a hook.
  Up to `max_concurrent_writes` accounts are written at once (`ordered.OrderedPool`: one
  thread each, one shared client); results are consumed in plan order, so the breaker, the
  rows and the status are the same whatever order the answers arrive in. A 429's
  `Retry-After` pauses every worker (the transport's shared gate in `k8s`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from core.cluster import (
    HASH_ANNOTATION,
    TRUSTSTORE_ACCOUNT,
    TRUSTSTORE_SECRET,
    Account,
    AccountRef,
    LiveSecret,
    LiveTrustStore,
    Owner,
    SecretSpec,
    TrustStoreSpec,
    secret_name,
)
from core.config import MAX_CONCURRENT_WRITES_DEFAULT, Scope
from core.properties import SparkProperties, data_hash
from k8s import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    KubeError,
    NotFoundError,
    UnavailableError,
)
from ordered import OrderedPool
from render.s3 import TrustStore
from store import AccountState, AppliedRow

if TYPE_CHECKING:  # the client is imported only where a hook first talks to the API (`k8s`)
    from k8s.gateway import KubeGateway

logger = logging.getLogger(__name__)

BREAKER = 3
"""Consecutive `UnavailableError` errors after which a pass stops writing."""
LOOKAHEAD = 4
"""How many times `max_concurrent_writes` steps may be started before the oldest is merged."""


class Action(str, Enum):
    """What the plan does for one account."""

    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    IN_SYNC = "in-sync"
    CONFLICT = "conflict"
    DELETE = "delete"


WRITES = {Action.CREATE, Action.UPDATE, Action.ADOPT, Action.DELETE}


@dataclass(frozen=True)
class Observation:
    """The cluster as listed at the start of a pass.

    Attributes:
        accounts: the Spark service accounts.
        secrets: the hub Secrets (ours or not), by account.
        truststores: the truststore Secrets (ours or not), by namespace.
        retired: truststores under the name used before `TRUSTSTORE_SECRET`, by namespace.
    """

    accounts: list[Account]
    secrets: dict[AccountRef, LiveSecret]
    truststores: dict[str, LiveTrustStore] = field(default_factory=dict)
    retired: dict[str, LiveTrustStore] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """The plan for one account (or, for `DELETE`, one orphaned Secret of ours)."""

    ref: AccountRef
    action: Action
    account: Account | None = None
    live: LiveSecret | None = None
    drifted: bool = False

    def describe(self) -> dict[str, str]:
        """A JSON-ready description (for the `reconcile` action's dry run)."""
        return {"account": str(self.ref), "action": self.action.value}


@dataclass(frozen=True)
class TrustStep:
    """The plan for one namespace's truststore Secret.

    A `retired` step deletes a truststore under its old name, once the namespace's accounts
    have properties that mount the new one (`retirable`), so no pod ever lacks its truststore.
    """

    namespace: str
    action: Action
    live: LiveTrustStore | None = None
    retired: bool = False

    @property
    def name(self) -> str:
        """The Secret this step writes or deletes."""
        return self.live.name if self.live is not None else TRUSTSTORE_SECRET

    def describe(self) -> dict[str, str]:
        """A JSON-ready description (for the `reconcile` action's dry run)."""
        return {"truststore": f"{self.namespace}/{self.name}", "action": self.action.value}


@dataclass
class Outcome:
    """What a pass did."""

    rows: list[AppliedRow] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    writes: int = 0
    deletes: int = 0
    interrupted: str = ""
    truststore_errors: list[str] = field(default_factory=list)

    def count(self, state: AccountState) -> int:
        """How many accounts ended in `state`."""
        return sum(1 for row in self.rows if row.state is state)


def observe(gateway: KubeGateway) -> Observation:
    """List accounts and hub Secrets (two list calls plus pages)."""
    accounts = gateway.list_accounts()
    listed = gateway.list_hub_secrets()
    stores = listed.truststores
    return Observation(
        accounts,
        {secret.ref: secret for secret in listed.accounts},
        {store.namespace: store for store in stores if store.name == TRUSTSTORE_SECRET},
        {store.namespace: store for store in stores if store.name != TRUSTSTORE_SECRET},
    )


def plan_truststores(
    observation: Observation, served: set[str], truststore: TrustStore | None, owner: Owner
) -> list[TrustStep]:
    """Decide, for every namespace, what to do with its truststore Secret. Pure.

    A served namespace gets the truststore while S3 sends a CA chain; ours is deleted from
    namespaces no longer served and when the chain goes. Someone else's is never touched.
    """
    steps: list[TrustStep] = []
    wanted = served if truststore is not None else set()
    for namespace in sorted(wanted | set(observation.truststores)):
        live = observation.truststores.get(namespace)
        if live is not None and not owner.owns(live):
            if namespace in wanted:
                steps.append(TrustStep(namespace, Action.CONFLICT, live))
        elif namespace not in wanted:
            if live is not None:
                steps.append(TrustStep(namespace, Action.DELETE, live))
        elif live is None:
            steps.append(TrustStep(namespace, Action.CREATE))
        else:
            assert truststore is not None
            same = live.annotations.get(HASH_ANNOTATION) == truststore.digest and dict(
                live.files
            ) == dict(truststore.files)
            steps.append(TrustStep(namespace, Action.IN_SYNC if same else Action.UPDATE, live))
    for namespace, live in sorted(observation.retired.items()):
        if owner.owns(live):
            steps.append(TrustStep(namespace, Action.DELETE, live, retired=True))
    return steps


def retirable(steps: Iterable[TrustStep], outcome: Outcome) -> list[TrustStep]:
    """The retired truststores that may go now: their namespace's accounts all settled.

    A namespace's accounts are settled when each is in sync (its properties mount the current
    truststore, or none) or in conflict (not ours), and its current truststore was written.
    """
    settled = {AccountState.IN_SYNC, AccountState.CONFLICT}
    waiting = {row.key.partition(":")[0] for row in outcome.rows if row.state not in settled}
    waiting |= {error.partition(":")[0] for error in outcome.truststore_errors}
    return [step for step in steps if step.retired and step.namespace not in waiting]


def plan(
    observation: Observation,
    desired: SparkProperties,
    owner: Owner,
    scope: Scope,
    known_conflicts: Set[AccountRef] = frozenset(),
) -> list[Step]:
    """Decide, for every account and every Secret of ours, what to do. Pure.

    `known_conflicts` are accounts whose Secret name was taken by an unlabelled Secret (which
    the list call cannot see): they stay conflicts without a write to find that out again.
    """
    desired_hash = desired.hash
    steps: list[Step] = []
    served: set[AccountRef] = set()
    for account in observation.accounts:
        live = observation.secrets.get(account.ref)
        if not scope.includes(account.ref.namespace, account.ref.name):
            continue
        served.add(account.ref)
        reserved = account.ref.name == TRUSTSTORE_ACCOUNT  # its Secret's name is the CA's
        if reserved or (live is None and account.ref in known_conflicts):
            steps.append(Step(account.ref, Action.CONFLICT, account))
        else:
            steps.append(_plan_account(account, live, desired_hash, owner))
    for ref, live in observation.secrets.items():
        if ref not in served and owner.owns(live):
            steps.append(Step(ref, Action.DELETE, live=live))
    return steps


def _plan_account(
    account: Account, live: LiveSecret | None, desired_hash: str, owner: Owner
) -> Step:
    ref = account.ref
    if live is None:
        return Step(ref, Action.CREATE, account)
    if owner.owns(live):
        if is_in_sync(live, desired_hash):
            return Step(ref, Action.IN_SYNC, account, live)
        edited = live.annotations.get(HASH_ANNOTATION) == desired_hash
        return Step(ref, Action.UPDATE, account, live, drifted=edited)
    if owner.may_adopt(live):
        return Step(ref, Action.ADOPT, account, live)
    return Step(ref, Action.CONFLICT, account, live)


def is_in_sync(live: LiveSecret, desired_hash: str) -> bool:
    """Whether the live data of `live` is exactly the desired data."""
    if any(value is None for value in live.data.values()):
        return False
    return data_hash({k: v for k, v in live.data.items() if v is not None}) == desired_hash


class Applier:
    """Applies a plan through the gateway, one write per account that needs one."""

    def __init__(
        self,
        gateway: KubeGateway,
        desired: SparkProperties,
        owner: Owner,
        previous: Mapping[str, AppliedRow],
        max_concurrent_writes: int = MAX_CONCURRENT_WRITES_DEFAULT,
        access_missing: Callable[[], bool] | None = None,
    ) -> None:
        """Create an applier for one pass.

        Args:
            gateway: the Kubernetes gateway.
            desired: the properties every account must have.
            owner: our identity.
            previous: applied rows from the store (for attempt counts).
            max_concurrent_writes: accounts written at once; 1 writes them one by one in the
                calling thread.
            access_missing: whether the hub lacks a permission it needs (an access review),
                asked once, at the first 403: if so the 403 stops the pass (`juju trust`);
                if not, it is that account's (or namespace's) error, as a quota's is. By
                default every 403 stops the pass.
        """
        if max_concurrent_writes < 1:
            raise ValueError("max_concurrent_writes must be at least 1")
        self._workers = max_concurrent_writes
        self._gateway = gateway
        self._data = desired.secret_data()
        self._hash = desired.hash
        self._owner = owner
        self._previous = previous
        self._unavailable = 0
        self._review = access_missing or (lambda: True)
        self._missing: bool | None = None
        self._review_lock = threading.Lock()

    def apply_truststores(
        self, steps: Iterable[TrustStep], truststore: TrustStore | None, outcome: Outcome
    ) -> None:
        """Write the namespaces' truststores (before the properties that mount them)."""
        for step in steps:
            try:
                self._apply_truststore(step, truststore, outcome)
            except ForbiddenError:
                if self.access_missing():
                    raise
                outcome.truststore_errors.append(f"{step.namespace}: 403 forbidden")
                logger.warning(
                    "truststore of %s: forbidden (not a missing permission)", step.namespace
                )
            except KubeError as error:
                outcome.truststore_errors.append(f"{step.namespace}: {error.reason}")
                logger.warning("truststore of %s: %s", step.namespace, error.reason)

    def _apply_truststore(
        self, step: TrustStep, truststore: TrustStore | None, outcome: Outcome
    ) -> None:
        if step.action is Action.DELETE:
            self._gateway.delete_secret(AccountRef(step.namespace, ""), step.name)
            outcome.deletes += 1
            return
        if step.action not in (Action.CREATE, Action.UPDATE) or truststore is None:
            return
        spec = TrustStoreSpec(
            step.namespace, TRUSTSTORE_SECRET, truststore.files, truststore.digest, self._owner
        )
        outcome.writes += 1
        if step.live is None:
            self._gateway.create_truststore(spec)
        else:
            self._gateway.replace_truststore(spec, step.live.resource_version)

    def apply(self, steps: Iterable[Step], outcome: Outcome | None = None) -> Outcome:
        """Apply every step; `ForbiddenError` propagates (the pass becomes blocked).

        Steps are consumed in plan order: each step's result is merged into `outcome` (and
        counted by the breaker) in that order, whichever write finished first.
        """
        outcome = outcome or Outcome()
        pending = iter(steps)
        if self._workers == 1:
            for step in pending:
                self._merge(step, *self._apply_step(step), outcome)
                if outcome.interrupted:
                    break
        else:
            self._apply_concurrently(pending, outcome)
        for step in pending:  # left by the breaker
            if step.action is not Action.DELETE:
                state = AccountState.DRIFTED if step.drifted else AccountState.PENDING
                outcome.rows.append(self._row(step.ref, state, ""))
        return outcome

    def _apply_concurrently(self, pending: Iterator[Step], outcome: Outcome) -> None:
        """Keep up to `_workers` steps in flight; merge each result in plan order.

        When the breaker trips no new step starts; the steps already started (at most
        `LOOKAHEAD` × `_workers` past the last one merged) finish and are recorded as they
        ended, so no outcome is lost or guessed.
        """
        with OrderedPool(
            self._apply_step, pending, self._workers, LOOKAHEAD * self._workers, "hub-write"
        ) as pool:
            for step, (result, error) in pool:
                self._merge(step, result, error, outcome)
                if outcome.interrupted:
                    pool.stop()

    def _merge(
        self, step: Step, result: Outcome, error: KubeError | None, outcome: Outcome
    ) -> None:
        """Add one step's result to the pass's outcome and count it for the breaker."""
        outcome.rows.extend(result.rows)
        outcome.gone.extend(result.gone)
        outcome.writes += result.writes
        outcome.deletes += result.deletes
        self._unavailable = self._unavailable + 1 if isinstance(error, UnavailableError) else 0
        if error is not None:
            logger.warning("account %s: %s", step.ref, error.reason)
            if self._unavailable >= BREAKER and not outcome.interrupted:
                outcome.interrupted = error.reason

    def _apply_step(self, step: Step) -> tuple[Outcome, KubeError | None]:
        """Apply one step: its own outcome and error (safe to run in a worker thread)."""
        result = Outcome()
        try:
            if step.action is Action.DELETE:
                self._gateway.delete_secret(step.ref, secret_name(step.ref.name))
                result.deletes += 1
                result.gone.append(str(step.ref))
                return result, None
            state, version = self._settle(step, result)
            result.rows.append(self._row(step.ref, state, version))
        except ForbiddenError as error:
            if self.access_missing():
                raise
            if step.action is not Action.DELETE:  # e.g. a namespace's quota: its own error
                result.rows.append(self._row(step.ref, AccountState.ERROR, "", error))
            return result, error
        except KubeError as error:
            state = AccountState.INVALID if isinstance(error, InvalidError) else AccountState.ERROR
            result.rows.append(self._row(step.ref, state, "", error))
            return result, error
        return result, None

    def access_missing(self) -> bool:
        """Whether the hub lacks a permission (reviewed once per pass; any doubt says yes)."""
        with self._review_lock:
            if self._missing is None:
                try:
                    self._missing = self._review()
                except KubeError:  # cannot tell: the pass stops as for a missing permission
                    return True
            return self._missing

    def _settle(self, step: Step, outcome: Outcome) -> tuple[AccountState, str]:
        """Bring one account's Secret to the desired data; returns its state and version."""
        assert step.account is not None
        if step.action is Action.IN_SYNC:
            assert step.live is not None
            return AccountState.IN_SYNC, step.live.resource_version
        if step.action is Action.CONFLICT:
            return AccountState.CONFLICT, ""
        spec = SecretSpec(step.account, self._data, self._hash, self._owner)
        try:
            if step.action is Action.CREATE:
                return self._create(spec, outcome)
            assert step.live is not None
            return self._replace(spec, step.live.resource_version, outcome)
        except (ConflictError, AlreadyExistsError):
            return self._retry_once(spec, outcome)
        except NotFoundError:
            if step.action is Action.CREATE:
                raise  # the namespace is gone: so is the account, on the next pass
            return self._create(spec, outcome)  # the Secret was deleted after we listed it

    def _create(self, spec: SecretSpec, outcome: Outcome) -> tuple[AccountState, str]:
        outcome.writes += 1
        return AccountState.IN_SYNC, self._gateway.create_secret(spec)

    def _replace(
        self, spec: SecretSpec, version: str, outcome: Outcome
    ) -> tuple[AccountState, str]:
        outcome.writes += 1
        return AccountState.IN_SYNC, self._gateway.replace_secret(spec, version)

    def _retry_once(self, spec: SecretSpec, outcome: Outcome) -> tuple[AccountState, str]:
        """After a 409: re-read the Secret, re-plan this account, and write at most once more."""
        ref = spec.account.ref
        live = self._gateway.get_secret(ref.namespace, spec.name)
        step = (
            Step(ref, Action.CREATE, spec.account)
            if live is None
            else _plan_account(spec.account, live, self._hash, self._owner)
        )
        if step.action is Action.IN_SYNC:
            assert live is not None
            return AccountState.IN_SYNC, live.resource_version
        if step.action is Action.CONFLICT:
            return AccountState.CONFLICT, ""
        try:
            if live is None:
                return self._create(spec, outcome)
            return self._replace(spec, live.resource_version, outcome)
        except NotFoundError:
            return self._create(spec, outcome)

    def _row(
        self,
        ref: AccountRef,
        state: AccountState,
        version: str,
        error: KubeError | None = None,
    ) -> AppliedRow:
        previous = self._previous.get(str(ref))
        attempts = (previous.attempts if previous else 0) + 1 if error else 0
        in_sync = state is AccountState.IN_SYNC
        if previous and previous.state is state and previous.resource_version == version:
            updated_at = previous.updated_at
        else:
            updated_at = time.time()
        return AppliedRow(
            key=str(ref),
            state=state,
            hash=self._hash if in_sync else (previous.hash if previous else ""),
            resource_version=version or (previous.resource_version if previous else ""),
            attempts=attempts,
            last_error=error.reason if error else "",
            updated_at=updated_at,
        )


def remove_owned(gateway: KubeGateway, owner: Owner) -> list[str]:
    """Delete every Secret `owner` wrote (its application is going away).

    Needs no store: what is ours is read from the cluster (our owner annotation). Every
    delete is tried, whatever the others answer.

    Returns:
        The Secrets left (`<namespace>/<name>`, with why), [] when all are gone.

    Raises:
        KubeError: they cannot be listed (so what is left is not known).
    """
    listed = gateway.list_hub_secrets()
    ours = [(s.ref, secret_name(s.ref.name)) for s in listed.accounts if owner.owns(s)]
    ours += [(AccountRef(t.namespace, ""), t.name) for t in listed.truststores if owner.owns(t)]
    left = []
    for ref, name in ours:
        try:
            gateway.delete_secret(ref, name)
        except KubeError as error:
            left.append(f"Secret {ref.namespace}/{name} ({error.reason})")
    logger.info(
        "application removed: deleted %d of %d Secrets of ours", len(ours) - len(left), len(ours)
    )
    return left
