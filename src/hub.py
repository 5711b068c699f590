"""One pass of the hub: inputs → desired properties → state machine → reconciler → status.

This is the manager the charm calls on every event. It knows no Juju event and no API object:
it takes the `SourceResult`s the charm read, decides with the state machine, reconciles through
the gateway when the state says so (leader only), and records everything in the store. The
Juju status is derived from what it records, so every hook shows the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.cluster import Account, AccountRef, LiveSecret, Owner, secret_name
from core.config import MAX_CONCURRENT_WRITES_DEFAULT, Scope
from core.inputs import Incomplete, Invalid, SourceResult
from core.masking import plain_keys, shown_value
from core.properties import Contribution, SparkProperties, decode_key, looks_sensitive
from core.values import largest_source, oversized, screen_all
from k8s import WATCH_PERMISSIONS, ForbiddenError, KubeError, UnavailableError
from machine import HubMachine, HubState, StatusReport, status_for
from reconciler import (
    Action,
    Applier,
    Outcome,
    Step,
    TrustStep,
    observe,
    plan,
    plan_truststores,
    retirable,
)
from render.s3 import TrustStore
from store import AccountState, AppliedRow, JournalEntry, Store

if TYPE_CHECKING:  # the client is imported only where a hook first talks to the API (`k8s`)
    from k8s.gateway import KubeGateway

logger = logging.getLogger(__name__)

RETRY_REFUSED_TRIGGERS = frozenset({"reconcile-action", "upgrade-charm", "leader-elected"})
"""Passes that write again properties the API server refused (otherwise only a change does)."""
NOTHING_TO_DISTRIBUTE = "nothing to distribute: relate an integration or set spark-properties"


@dataclass(frozen=True)
class Verdict:
    """What the inputs say: blocked or waiting (with why), or the properties to distribute."""

    trigger: str
    reason: str = ""
    properties: SparkProperties | None = None


def evaluate(results: Sequence[SourceResult], distributed_before: bool = False) -> Verdict:
    """Decide from the sources' results (pure).

    With nothing to distribute, the hub waits — unless it has distributed properties before:
    then the last source was removed, and its properties must leave every Secret. A key or
    value that cannot reach Spark exactly, or a Secret over Kubernetes' size limit, blocks
    (`core.values`).
    """
    results = screen_all(results)
    invalid = [r for r in results if isinstance(r, Invalid)]
    if invalid:
        return Verdict("block", "; ".join(str(r) for r in invalid))
    incomplete = [r for r in results if isinstance(r, Incomplete)]
    if incomplete:
        return Verdict("wait", "waiting for " + "; ".join(str(r) for r in incomplete))
    contributions = [r for r in results if isinstance(r, Contribution)]
    properties = SparkProperties.merge(contributions)
    if not properties and not distributed_before:
        return Verdict("wait", NOTHING_TO_DISTRIBUTE)
    if too_big := oversized(properties):
        return Verdict("block", too_big)
    return Verdict("reconcile", properties=properties)


@dataclass
class PassReport:
    """What one pass did, for the journal, the `reconcile` action and the demo."""

    state: HubState
    message: str
    plan: list[Step | TrustStep] = field(default_factory=list)
    outcome: Outcome | None = None
    desired: SparkProperties | None = None
    """The properties the pass distributes (None: it has none, waiting or blocked)."""


def trust_message(app: str, missing: Sequence[object]) -> str:
    """The blocked message when the hub lacks permissions."""
    listed = ", ".join(str(m) for m in missing)
    return f"run `juju trust {app} --scope=cluster` (missing: {listed})"


class Hub:
    """Runs passes for one unit, against one store and one cluster."""

    def __init__(
        self,
        store: Store,
        gateway: KubeGateway | Callable[[], KubeGateway],
        owner: Owner,
        max_concurrent_writes: int = MAX_CONCURRENT_WRITES_DEFAULT,
    ) -> None:
        """Create the hub.

        Args:
            store: the unit's store.
            gateway: the Kubernetes gateway, or a function returning it (called on first use,
                so a pass that sends no request, a follower's, never builds one).
            owner: this application's identity.
            max_concurrent_writes: Secrets written at once (config `max-concurrent-writes`).
        """
        self.store = store
        self._gateway_source = gateway
        self._gateway: KubeGateway | None = None
        self.owner = owner
        self.max_concurrent_writes = max_concurrent_writes

    @property
    def gateway(self) -> KubeGateway:
        """The Kubernetes gateway (built on first use)."""
        if self._gateway is None:
            source = self._gateway_source
            self._gateway = source() if callable(source) else source
        return self._gateway

    def close(self) -> None:
        """Close the store and, if it was used, the gateway's connections."""
        self.store.close()
        if self._gateway is not None:
            self._gateway.close()

    # -- the pass -----------------------------------------------------------------------------

    def run_pass(
        self,
        results: Sequence[SourceResult],
        scope: Scope,
        *,
        trigger: str,
        leader: bool,
        check_access: bool = False,
        truststore: TrustStore | None = None,
        recheck_conflicts: bool = False,
    ) -> PassReport:
        """Run one pass and record it; never raises for API trouble (it becomes the status).

        Args:
            results: every source's result (config and integrations).
            scope: the accounts served.
            trigger: what caused the pass (journalled).
            leader: whether this unit may write.
            check_access: whether to review the hub's permissions first.
            truststore: the S3 CA truststore to put in every served namespace, if any.
            recheck_conflicts: try again to create the Secrets of accounts in conflict with an
                unlabelled Secret (otherwise they cost no request until then).
        """
        verdict = evaluate(results, distributed_before=self.store.desired_hash is not None)
        report = self._run(
            verdict, scope, trigger, leader, check_access, truststore, recheck_conflicts
        )
        report.desired = verdict.properties
        return report

    def _run(
        self,
        verdict: Verdict,
        scope: Scope,
        trigger: str,
        leader: bool,
        check_access: bool,
        truststore: TrustStore | None,
        recheck_conflicts: bool,
    ) -> PassReport:
        machine = HubMachine(self.store.machine_state)
        if verdict.properties is not None:
            self.store.set_desired(verdict.properties)
        if not leader:
            return self._finish(machine, trigger, self._standby(verdict))
        if check_access or self._blocked_on_trust(machine):
            try:
                missing = self._missing_permissions()
            except UnavailableError as error:  # an outage, not missing trust
                machine.fire("reconcile", f"reconciling (retrying: {error.reason})")
                return self._finish(machine, trigger)
            if missing:
                machine.fire("block", trust_message(self.owner.app, missing))
                return self._finish(machine, trigger)
            self._review_watch_access()
        elif self.store.watch_missing:  # until `juju trust` is run (no event says so)
            self._review_watch_access()
        if verdict.properties is None:
            machine.fire(verdict.trigger, verdict.reason)
            return self._finish(machine, trigger)
        machine.fire("reconcile")
        return self._reconcile(
            machine, verdict.properties, scope, trigger, truststore, recheck_conflicts
        )

    def dry_run(
        self,
        results: Sequence[SourceResult],
        scope: Scope,
        truststore: TrustStore | None = None,
    ) -> PassReport:
        """The plan a pass would carry out, without writing to the cluster or the store."""
        verdict = evaluate(results, distributed_before=self.store.desired_hash is not None)
        state = HubState(self.store.machine_state or HubState.WAITING.value)
        if verdict.properties is None:
            return PassReport(state, verdict.reason)
        observation = observe(self.gateway)
        steps = plan(observation, verdict.properties, self.owner, scope)
        trust_steps = plan_truststores(observation, _served(steps), truststore, self.owner)
        return PassReport(state, "dry run: nothing written", plan=[*trust_steps, *steps])

    def _reconcile(
        self,
        machine: HubMachine,
        desired: SparkProperties,
        scope: Scope,
        trigger: str,
        truststore: TrustStore | None,
        recheck_conflicts: bool,
    ) -> PassReport:
        calls_before = self.gateway.calls
        previous = self.store.applied()
        known = set() if recheck_conflicts else _conflicts(previous)
        try:
            observation = observe(self.gateway)
            steps = plan(observation, desired, self.owner, scope, known)
            trust_steps = plan_truststores(observation, _served(steps), truststore, self.owner)
            applier = Applier(
                self.gateway,
                desired,
                self.owner,
                previous,
                self.max_concurrent_writes,
                access_missing=lambda: bool(self._missing_permissions()),
            )
            outcome = Outcome()
            current = [step for step in trust_steps if not step.retired]
            applier.apply_truststores(current, truststore, outcome)
            refused = self._still_refused(previous, desired, trigger)
            applier.apply([step for step in steps if not _held(step, refused)], outcome)
            outcome.rows += [previous[str(step.ref)] for step in steps if _held(step, refused)]
            if not outcome.interrupted:
                applier.apply_truststores(retirable(trust_steps, outcome), None, outcome)
        except ForbiddenError as error:
            try:
                missing = self._missing_permissions()
            except UnavailableError as outage:
                machine.reason = f"reconciling (retrying: {outage.reason})"
                return self._finish(machine, trigger)
            if not missing:  # a 403 the review does not explain (a proxy, an admission hook)
                machine.reason = f"reconciling (retrying: 403 from API ({error.reason}))"
                return self._finish(machine, trigger)
            machine.fire("block", trust_message(self.owner.app, missing))
            return self._finish(machine, trigger)
        except KubeError as error:
            machine.reason = f"reconciling (retrying: {error.reason})"
            return self._finish(machine, trigger)
        self._record(observation.accounts, scope, outcome, previous)
        _settle(machine, outcome, empty=not desired, largest_source=largest_source(desired))
        invalid = outcome.count(AccountState.INVALID) > 0
        self.store.refused_hash = desired.hash if invalid else None
        requests = self.gateway.calls - calls_before
        report = self._finish(machine, trigger, outcome=outcome, requests=requests)
        report.plan = [*trust_steps, *steps]
        return report

    def _record(
        self,
        accounts: Sequence[Account],
        scope: Scope,
        outcome: Outcome,
        previous: Mapping[str, AppliedRow],
    ) -> None:
        """Record the accounts seen and what changed for each; unchanged rows stay as they are."""
        rows = [
            {
                "key": str(a.ref),
                "namespace": a.ref.namespace,
                "name": a.ref.name,
                "uid": a.uid,
                "in_scope": int(scope.includes(a.ref.namespace, a.ref.name)),
            }
            for a in accounts
        ]
        served = {row.key for row in outcome.rows}
        with self.store.transaction():
            self.store.record_accounts(rows)
            self.store.record_applied(row for row in outcome.rows if previous.get(row.key) != row)
            self.store.forget(key for key in previous if key not in served)

    def _finish(
        self,
        machine: HubMachine,
        trigger: str,
        standby: StatusReport | None = None,
        outcome: Outcome | None = None,
        requests: int = 0,
    ) -> PassReport:
        """Persist the machine's state and status, journal the pass, and report it."""
        status = standby or status_for(machine.current, machine.reason)
        if status.name == "active" and not standby and (unwatched := self.store.watch_missing):
            status = StatusReport(status.name, status.message + self._watch_note(unwatched))
        with self.store.transaction():
            self.store.machine_state = machine.current.value
            self.store.status = status
        if machine.current is HubState.ACTIVE:
            self.store.discard_set_aside()
        report = PassReport(machine.current, status.message, outcome=outcome)
        self._journal(trigger, report, requests)
        return report

    def _journal(self, trigger: str, report: PassReport, requests: int) -> None:
        outcome = report.outcome or Outcome()
        self.store.journal_append(
            JournalEntry(
                trigger=trigger,
                state=report.state.value,
                message=report.message,
                accounts=len(outcome.rows),
                writes=outcome.writes,
                deletes=outcome.deletes,
                requests=requests,
            )
        )

    def _standby(self, verdict: Verdict) -> StatusReport:
        if verdict.trigger == "block":
            return StatusReport("blocked", verdict.reason)
        return StatusReport("active", "standby: the leader distributes")

    def _blocked_on_trust(self, machine: HubMachine) -> bool:
        return machine.current is HubState.BLOCKED and "juju trust" in self.store.status.message

    def _still_refused(
        self, previous: Mapping[str, AppliedRow], desired: SparkProperties, trigger: str
    ) -> set[str]:
        """The accounts whose Secret the API server refused with exactly these properties.

        Writing them again would be refused again (400/422), so until the properties change,
        or the operator asks (`reconcile`, an upgrade, a new leader), they are not written;
        every other account is reconciled as usual.
        """
        if self.store.refused_hash != desired.hash or trigger in RETRY_REFUSED_TRIGGERS:
            return set()
        return {key for key, row in previous.items() if row.state is AccountState.INVALID}

    def _review_watch_access(self) -> None:
        """Record which of the watcher's permissions are missing (kept until the next review)."""
        try:
            missing = self.gateway.missing_permissions(WATCH_PERMISSIONS)
        except KubeError as error:
            logger.info("cannot review the watcher's access: %s", error.reason)
            return
        self.store.watch_missing = [str(permission) for permission in missing]

    def _watch_note(self, missing: Sequence[str]) -> str:
        return (
            f"; the watcher cannot watch (missing: {', '.join(missing)}), so changes are seen "
            f"at update-status only: run `juju trust {self.owner.app} --scope=cluster`"
        )

    def _missing_permissions(self) -> list[object]:
        """The permissions the hub lacks; an outage is raised, never shown as missing trust.

        Raises:
            UnavailableError: the API cannot answer the review now (unreachable,
                rate-limited, or the hook's budget spent).
        """
        try:
            return list(self.gateway.missing_permissions())
        except UnavailableError:
            raise
        except KubeError as error:
            return [f"access review failed: {error.reason}"]

    # -- what actions read ----------------------------------------------------------------------

    def status(self) -> StatusReport:
        """The status recorded by the last pass."""
        return self.store.status

    @property
    def problems(self) -> list[str]:
        """What the last pass found wrong with the accounts other charms ask for."""
        return self.store.problems

    def record_problems(self, problems: Sequence[str]) -> None:
        """Keep the provider's problems for collect-status (and hooks that run no pass)."""
        self.store.problems = list(problems)
        for problem in problems:
            logger.warning(problem)

    def accounts(self, namespace: str | None = None, state: str | None = None) -> list[dict]:
        """In-scope accounts and their applied state, optionally filtered."""
        applied = self.store.applied()
        listed = []
        for account in self.store.accounts():
            if not account["in_scope"] or namespace not in (None, account["namespace"]):
                continue
            row = applied.get(str(account["key"])) or AppliedRow(
                str(account["key"]), AccountState.PENDING
            )
            if state not in (None, row.state.value):
                continue
            listed.append(_describe(row))
        return listed

    def desired_config(
        self, results: Sequence[SourceResult], reveal: bool
    ) -> dict[str, dict[str, str]]:
        """The properties the hub distributes from `results` (this hook's inputs), by source.

        The store keeps no values, so they come from the inputs; inputs that block or wait
        show no properties (the status says why). Credentials are masked unless `reveal`.
        """
        verdict = evaluate(results, distributed_before=self.store.desired_hash is not None)
        if verdict.properties is None:
            return {}
        return {
            p.key: {
                "value": shown_value(p.value, p.sensitive or looks_sensitive(p.key), reveal),
                "source": p.source.value,
            }
            for p in verdict.properties.items
        }

    def account_config(self, ref: AccountRef, reveal: bool) -> dict[str, str] | None:
        """The properties this hub's Secret of an account holds now, or None if it has none.

        Only a Secret that carries this hub's marks (its labels and owner annotation) is
        shown: any other Secret, whatever its name, is None. Without `reveal`, a value is
        masked when its key looks like a credential or the hub took it from a credential
        field (the sources' sensitive keys), and URL credentials are masked in every value.
        """
        live = self.gateway.get_secret(ref.namespace, secret_name(ref.name))
        if live is None or not self._carries_our_marks(live):
            return None
        plain = plain_keys(self.store.desired_keys())
        shown: dict[str, str] = {}
        for encoded, value in sorted(live.data.items()):
            try:
                key = decode_key(encoded)
            except ValueError:
                key = encoded  # not written by this hub's encoding
            if value is None:
                shown[key] = "<not UTF-8>"
                continue
            credential = key not in plain or looks_sensitive(key)
            shown[key] = shown_value(value, credential, reveal)
        return shown

    def _carries_our_marks(self, live: LiveSecret) -> bool:
        labels = self.owner.labels
        return self.owner.owns(live) and all(live.labels.get(k) == v for k, v in labels.items())


def refused_message(accounts: int, largest_source: str) -> str:
    """The blocked message when the API server refuses the hub's Secrets (400/422)."""
    return (
        f"the API server refused the Secret of {accounts} accounts as invalid (see "
        f"list-accounts); the largest source is {largest_source}: fix or shrink it"
    )


def _settle(machine: HubMachine, outcome: Outcome, empty: bool, largest_source: str = "") -> None:
    """Converge when every account is settled; otherwise say what is left, and why."""
    total = len(outcome.rows)
    in_sync = outcome.count(AccountState.IN_SYNC)
    conflicts = outcome.count(AccountState.CONFLICT)
    if invalid := outcome.count(AccountState.INVALID):
        machine.fire("block", refused_message(invalid, largest_source))
        return
    if in_sync + conflicts == total and not outcome.truststore_errors:
        message = f"{in_sync} accounts in sync"
        if conflicts:
            message += f", {conflicts} in conflict (see list-accounts)"
        if empty:
            message += f" ({NOTHING_TO_DISTRIBUTE})"
        machine.fire("converge", message)
    else:
        errors = [row.last_error for row in outcome.rows if row.last_error]
        errors += outcome.truststore_errors
        machine.reason = f"reconciling {in_sync + conflicts}/{total} accounts"
        if errors or outcome.interrupted:
            machine.reason += f" (retrying: {outcome.interrupted or errors[-1]})"


def _conflicts(applied: Mapping[str, AppliedRow]) -> set[AccountRef]:
    return {
        AccountRef.parse(key) for key, row in applied.items() if row.state is AccountState.CONFLICT
    }


def _held(step: Step, refused: set[str]) -> bool:
    """Whether `step` would write a Secret the API server already refused as it is."""
    return step.action in (Action.CREATE, Action.UPDATE, Action.ADOPT) and str(step.ref) in refused


def _served(steps: Sequence[Step]) -> set[str]:
    return {step.ref.namespace for step in steps if step.action is not Action.DELETE}


def _describe(row: AppliedRow) -> dict[str, str]:
    return {
        "account": row.key,
        "state": row.state.value,
        "hash": row.hash[:12],
        "last-applied": datetime.fromtimestamp(row.updated_at, UTC).isoformat(timespec="seconds"),
        "last-error": row.last_error,
        "attempts": str(row.attempts),
    }
