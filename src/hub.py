"""One pass of the hub: inputs → desired properties → state machine → reconciler → status.

This is the manager the charm calls on every event. It knows no Juju event and no API object:
it takes the `SourceResult`s the charm read, decides with the state machine, reconciles through
the gateway when the state says so (leader only), and records everything in the store. The
Juju status is derived from what it records, so every hook shows the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.cluster import Account, AccountRef, LiveSecret, Owner, secret_name
from core.config import Scope
from core.inputs import Incomplete, Invalid, SourceResult
from core.masking import shown_value
from core.properties import Contribution, SparkProperties, decode_key, looks_sensitive
from k8s import ForbiddenError, KubeError, KubeGateway
from machine import HubMachine, HubState, StatusReport, status_for
from reconciler import Action, Applier, Outcome, Step, TrustStep, observe, plan, plan_truststores
from render.s3 import TrustStore
from store import AccountState, AppliedRow, JournalEntry, Store

logger = logging.getLogger(__name__)

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
    then the last source was removed, and its properties must leave every Secret.
    """
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
    return Verdict("reconcile", properties=properties)


@dataclass
class PassReport:
    """What one pass did, for the journal, the `reconcile` action and the demo."""

    state: HubState
    message: str
    plan: list[Step | TrustStep] = field(default_factory=list)
    outcome: Outcome | None = None


def trust_message(app: str, missing: Sequence[object]) -> str:
    """The blocked message when the hub lacks permissions."""
    listed = ", ".join(str(m) for m in missing)
    return f"run `juju trust {app} --scope=cluster` (missing: {listed})"


class Hub:
    """Runs passes for one unit, against one store and one cluster."""

    def __init__(self, store: Store, gateway: KubeGateway, owner: Owner) -> None:
        """Create the hub.

        Args:
            store: the unit's store.
            gateway: the Kubernetes gateway.
            owner: this application's identity.
        """
        self.store = store
        self.gateway = gateway
        self.owner = owner

    def close(self) -> None:
        """Close the store and the gateway's connections."""
        self.store.close()
        self.gateway.close()

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
        machine = HubMachine(self.store.machine_state)
        if verdict.properties is not None:
            self.store.set_desired(verdict.properties)
        if not leader:
            return self._finish(machine, trigger, self._standby(verdict))
        if check_access or self._blocked_on_trust(machine):
            missing = self._missing_permissions()
            if missing:
                machine.fire("block", trust_message(self.owner.app, missing))
                return self._finish(machine, trigger)
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
            applier = Applier(self.gateway, desired, self.owner, previous)
            outcome = Outcome()
            applier.apply_truststores(trust_steps, truststore, outcome)
            applier.apply(steps, outcome)
        except ForbiddenError as error:
            missing = self._missing_permissions() or [error.reason]
            machine.fire("block", trust_message(self.owner.app, missing))
            return self._finish(machine, trigger)
        except KubeError as error:
            machine.reason = f"reconciling (retrying: {error.reason})"
            return self._finish(machine, trigger)
        self._record(observation.accounts, scope, outcome, previous)
        _settle(machine, outcome, empty=not desired)
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
        with self.store.transaction():
            self.store.machine_state = machine.current.value
            self.store.status = status
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

    def _missing_permissions(self) -> list[object]:
        try:
            return list(self.gateway.missing_permissions())
        except KubeError as error:
            return [f"access review failed: {error.reason}"]

    # -- what actions read ----------------------------------------------------------------------

    def status(self) -> StatusReport:
        """The status recorded by the last pass."""
        return self.store.status

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

    def desired_config(self, reveal: bool) -> dict[str, dict[str, str]]:
        """The properties the hub distributes, with their sources (credentials masked)."""
        desired = self.store.desired()
        if not desired:
            return {}
        return {
            p.key: {
                "value": shown_value(p.value, p.sensitive or looks_sensitive(p.key), reveal),
                "source": p.source.value,
            }
            for p in desired.items
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
        desired = self.store.desired()
        sensitive = {p.key for p in desired.items if p.sensitive} if desired else set()
        shown: dict[str, str] = {}
        for encoded, value in sorted(live.data.items()):
            try:
                key = decode_key(encoded)
            except ValueError:
                key = encoded  # not written by this hub's encoding
            if value is None:
                shown[key] = "<not UTF-8>"
                continue
            credential = key in sensitive or looks_sensitive(key)
            shown[key] = shown_value(value, credential, reveal)
        return shown

    def _carries_our_marks(self, live: LiveSecret) -> bool:
        labels = self.owner.labels
        return self.owner.owns(live) and all(live.labels.get(k) == v for k, v in labels.items())


def _settle(machine: HubMachine, outcome: Outcome, empty: bool) -> None:
    """Converge when every account is settled; otherwise say what is left, and why."""
    total = len(outcome.rows)
    in_sync = outcome.count(AccountState.IN_SYNC)
    conflicts = outcome.count(AccountState.CONFLICT)
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
