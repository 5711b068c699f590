"""The `spark-service-account` provider: Spark service accounts that other charms ask for.

A requirer asks for `<namespace>:<username>` over the `spark_service_account` v0 interface, and
is answered with `spark-properties` and a `resource-manifest`. Its request is one of two kinds:

* **`skip-creation: true`** (Kubeflow's data-kubeflow-integrator): the requirer's side makes
  the account, from the manifest (resource-dispatcher applies it in every profile namespace).
  The hub creates, adopts and checks nothing, so it answers at once, whatever the namespace;
  its own pass fills the hub Secret of every copy that appears, like any Spark account's.
* **`skip-creation: false`** (Kyuubi): the hub makes the four objects spark8t makes
  (`core.manifest.account_bodies`), stamped `integration-hub/created-by=<model-uuid>/<app>`
  and `integration-hub/relation=<endpoint>:<id>`, where the policy allows it
  (`core.config.AccountPolicy`): in the namespace the requirer itself runs in, shown by the
  API (its pods, labelled `app.kubernetes.io/name=<application>`, in the hub's model: see
  `_runs_in`), or in a namespace the operator lists. A pod may run as any ServiceAccount of
  its namespace, so an account there gives the requirer nothing it does not have already.

An account belongs to the relation that asked for it first: another relation's request for it
is refused unless `service-account-sharing` is on, and it is released when its own relation
goes. Releasing finds what to delete with one list call by label, checked by annotation, so it
needs no local state and survives restarts and store loss; it deletes only objects that carry
this hub's annotation (an adopted account is never deleted).

`AccountManager` is the cluster side (no Juju), `AccountProvider` the Juju side (relations, the
library's events, the answer).

Requests: a *full* pass (after an event of the endpoint, `config-changed`, `leader-elected` or
`upgrade-charm`) lists the hub's provided accounts once, checks the policy (a GET of the
namespace, and a list of one pod where the requirer's own namespace is the question) and reads
every object of each account to create. Any other pass lists once and reads only what is not
known to be the hub's; the answer itself costs no request (the manifest is built, not read).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ops
from charms.spark_integration_hub_k8s.v0.hub_service_account import (
    SPARK_PROPERTIES,
    InvalidServiceAccountError,
    ServiceAccountRequest,
    SparkServiceAccountProvider,
)

from core.cluster import AccountRef, Owner, TrustStoreSpec
from core.config import AccountPolicy, HubConfig, Scope
from core.manifest import (
    RELATION_ANNOTATION,
    AccountNames,
    AccountObjects,
    KubeObject,
    Mark,
    account_bodies,
    missing_bodies,
    render_manifest,
)
from core.properties import SparkProperties
from k8s import AlreadyExistsError, ForbiddenError, KubeError, UnavailableError

if TYPE_CHECKING:  # the client is imported only where a hook first talks to the API (`k8s`)
    from k8s.gateway import KubeGateway
    from render.s3 import TrustStore

logger = logging.getLogger(__name__)

RELATION_NAME = "spark-service-account"
RETRY_HINT = "the hub retries on the next event"
FULL_PASS_EVENTS = ("config_changed", "leader_elected", "upgrade_charm")
"""Charm events after which a pass checks every provided account (besides the endpoint's)."""
JUJU_MANAGED_BY = ("app.kubernetes.io/managed-by", "juju")
"""The label Juju puts on every model's namespace (with `model.juju.is/name=<model>`)."""
JUJU_MODEL_LABEL = "model.juju.is/name"
POLICY_DOC = "docs/how-to/provide-accounts.md"
"""Where an operator reads what widening the policy means."""


@dataclass(frozen=True)
class Want:
    """An account that something (a relation) asks for.

    Attributes:
        ref: the account.
        source: who asks, for messages (e.g. `spark-service-account:3 (kyuubi)`).
        relation: `<endpoint>:<id>`: the relation the account belongs to, if it is the first
            to ask (stamped on what the hub creates).
        app: the requirer's application name, as the hub's model knows it (a cross-model
            requirer's is `remote-<uuid>`, which runs no pod).
        skip_creation: the requirer's side makes the account; the hub must not.
        kept: the request is malformed or gone, but the account it was given must not be
            released (nothing is created or checked for it).
    """

    ref: AccountRef
    source: str
    relation: str = ""
    app: str = ""
    skip_creation: bool = False
    kept: bool = False

    @property
    def relation_id(self) -> int:
        """The relation's id (relations asked in order of their ids), or -1 when unknown."""
        _, _, number = self.relation.rpartition(":")
        return int(number) if number.isdecimal() and number.isascii() else -1


# -- the cluster side -----------------------------------------------------------------------------


class AccountManager:
    """Creates, adopts and releases Spark accounts through the gateway; knows nothing of Juju.

    `reconcile` caches what it reads of namespaces and pods for the pass.
    """

    def __init__(
        self,
        gateway: KubeGateway,
        owner: Owner,
        policy: AccountPolicy | None = None,
        scope: Scope | None = None,
        hub_namespace: str = "",
    ) -> None:
        """Create the manager.

        Args:
            gateway: the Kubernetes gateway.
            owner: this hub's identity (stamped on what it creates; checked before a delete).
            policy: where accounts may be created (default: the options' safe defaults).
            scope: `monitored-service-accounts`; an account outside it is refused.
            hub_namespace: the hub's own model namespace.
        """
        self.gateway = gateway
        self.owner = owner
        self.policy = policy or AccountPolicy()
        self.scope = scope or Scope()
        self.hub_namespace = hub_namespace
        self._namespaces: dict[str, KubeObject | None] = {}
        self._runs_pods: dict[tuple[str, str], bool] = {}
        self.granted: set[str] = set()
        """The relations (`<endpoint>:<id>`) answered this pass: their account is allowed and
        complete, or made by the requirer."""

    def reconcile(self, wants: Iterable[Want], full: bool = True) -> list[str]:
        """Release what no relation may keep; ensure every account a relation may have.

        Args:
            wants: the accounts asked for; several wants may name the same account, which
                then belongs to the first relation that asked (see `holders`).
            full: check the policy and read every object of each account to create;
                otherwise an account this hub created (listed) costs nothing.

        Returns:
            Problems, each naming who asked and the fix.

        Raises:
            ForbiddenError: the hub lacks a permission.
        """
        self.granted = set()
        self._namespaces, self._runs_pods = {}, {}
        grouped: dict[AccountRef, list[Want]] = {}
        for want in sorted(wants, key=lambda w: w.relation_id):
            grouped.setdefault(want.ref, []).append(want)
        problems: list[str] = []
        # With no requirer, a failed list is retried next pass and worth no message.
        provided = self._provided(problems if grouped else []) or {}
        for ref in sorted(provided):
            holders = self.holders(grouped.get(ref, []), provided[ref])
            if holders:
                continue
            problem = self._release_quietly(ref)
            if problem:
                problems.append(problem)
            else:
                del provided[ref]
        for ref in sorted(grouped):
            holders = self.holders(grouped[ref], provided.get(ref))
            if not holders:
                continue  # its release failed (reported above): the next pass finishes it
            problems += [_taken(want, holders[0]) for want in grouped[ref] if want not in holders]
            problem = self._ensure_contained(holders, provided.get(ref), full)
            if problem:
                problems.append(problem)
        return problems

    def holders(self, wants: list[Want], ours: KubeObject | None) -> list[Want]:
        """The wants the account is answered to (sorted by relation); [] to release it.

        The account belongs to the relation stamped on it, or, for one the hub did not
        create yet, to the first relation (lowest id) that asks. The others share it only
        when the policy says so; an account whose own relation is gone is released, unless
        it is shared and others still ask.
        """
        if not wants:
            return []
        stamped = ours.annotations.get(RELATION_ANNOTATION) if ours is not None else None
        holder = next((w for w in wants if w.relation == stamped), None)
        if holder is None and stamped is not None and not self.policy.share:
            return []  # its own relation is gone: released, and the next asker gets a new one
        holder = holder or wants[0]
        return wants if self.policy.share else [holder]

    def provided(self) -> dict[AccountRef, KubeObject]:
        """The ServiceAccounts this hub created (one list call, checked by annotation)."""
        return {
            AccountRef(sa.namespace, sa.name): sa
            for sa in self.gateway.list_provided_accounts(self.owner)
            if sa.created_by_owner(self.owner)
        }

    def _provided(self, problems: list[str]) -> dict[AccountRef, KubeObject] | None:
        try:
            return self.provided()
        except ForbiddenError:
            raise
        except KubeError as error:
            if problem := _problem(f"{RELATION_NAME}: cannot list provided accounts", error):
                problems.append(problem)
            return None

    # -- ensure -----------------------------------------------------------------------------------

    def _ensure_contained(
        self, wants: list[Want], ours: KubeObject | None, full: bool
    ) -> str | None:
        """`ensure`, with any unexpected error confined to this account's requests.

        A bug or a hostile value that gets past parsing must not stop the hub serving every
        other account: the error is logged by type (never its text, which may quote input)
        and reported against who asked.
        """
        try:
            return self.ensure(wants, ours, full)
        except (ForbiddenError, KubeError):
            raise
        except Exception as error:  # contained per account on purpose
            logger.error("account %s: unexpected %s", wants[0].ref, type(error).__name__)
            return (
                f"{wants[0].source}: cannot serve account {wants[0].ref} "
                f"(unexpected {type(error).__name__}); check the request, {RETRY_HINT}"
            )

    def ensure(self, wants: list[Want], ours: KubeObject | None, full: bool = True) -> str | None:
        """Make one account exist, unless its requirers make it; returns a problem, or None.

        Args:
            wants: the wants the account is answered to (`holders`).
            ours: its ServiceAccount, when the list of provided accounts has it.
            full: see `reconcile`.

        Raises:
            ForbiddenError: the hub lacks a permission.
        """
        live = [w for w in wants if not w.kept]
        if not live:
            return None  # kept by a malformed or withdrawn request only: leave it be
        first = live[0]
        ref = first.ref
        if not self.scope.includes(ref.namespace, ref.name):
            return (
                f"{first.source}: account {ref} is outside monitored-service-accounts, so the "
                "hub would never fill its Secret: ask for an account in scope, or widen "
                "monitored-service-accounts"
            )
        if all(w.skip_creation for w in live):
            self.granted.update(w.relation for w in live)  # the requirer makes it: no check
            return None
        if ours is not None and not full:
            self.granted.update(w.relation for w in live)  # created and checked before
            return None
        try:
            problem = self._refusal(first) or self._create(first, ours, full)
        except ForbiddenError:
            raise
        except KubeError as error:
            return _problem(f"{first.source}: cannot create account {ref} yet", error)
        if problem is None:
            self.granted.update(w.relation for w in live)
        return problem

    def _refusal(self, want: Want) -> str | None:
        """Why the policy refuses to create the account here, or None (1 or 2 requests)."""
        ref = want.ref
        namespace = self._namespace(ref.namespace)
        if self._runs_in(want, namespace):
            return None
        reserved = self._reserved(namespace, ref.namespace)
        if not self.policy.allows(ref.namespace, reserved=reserved):
            return (
                f"{want.source}: cannot create account {ref}: {ref.namespace} is not where "
                f"{want.app or 'the requirer'} runs, nor listed in service-account-namespaces: "
                f"`juju config <hub> service-account-namespaces={ref.namespace}` allows it "
                f"(any pod in {ref.namespace} could then run as the account: {POLICY_DOC})"
            )
        if namespace is None and not self.policy.create_namespaces:
            return (
                f"{want.source}: namespace {ref.namespace} does not exist: create it, or "
                "`juju config <hub> service-account-create-namespaces=true`"
            )
        return None

    def _namespace(self, name: str) -> KubeObject | None:
        if name not in self._namespaces:
            self._namespaces[name] = self.gateway.get_object("Namespace", "", name)
        return self._namespaces[name]

    def _runs_in(self, want: Want, namespace: KubeObject | None) -> bool:
        """Whether the requirer runs in the namespace: its pods are there (1 list, cached).

        Only the hub's own namespace can be shown so: an application related without an offer
        is in the hub's model, whose namespace it is; a cross-model requirer is known here as
        `remote-<uuid>`, which no pod is labelled with. Elsewhere the label proves nothing:
        application names are unique per model only, and any pod (`cert-manager`'s, say) may
        carry `app.kubernetes.io/name=<anything>`.
        """
        if namespace is None or not want.app or namespace.name != self.hub_namespace:
            return False
        key = (namespace.name, want.app)
        if key not in self._runs_pods:
            self._runs_pods[key] = self.gateway.runs_pods(namespace.name, want.app)
        return self._runs_pods[key]

    def _reserved(self, namespace: KubeObject | None, name: str) -> bool:
        """Whether the namespace is reserved: by name, the hub's own, or a Juju model's."""
        if AccountPolicy.is_reserved_name(name) or name == self.hub_namespace:
            return True
        return namespace is not None and _is_juju_model(namespace)

    def _create(self, want: Want, ours: KubeObject | None, full: bool) -> str | None:
        """Create what is missing of the account (nothing, for a complete spark8t account)."""
        ref = want.ref
        account = ours
        if account is None:
            account = self.gateway.get_object("ServiceAccount", ref.namespace, ref.name)
            if account is not None and not account.is_spark8t_account:
                return (
                    f"{want.source}: service account {ref} exists but is not a Spark account "
                    "(no label app.kubernetes.io/managed-by=spark8t): ask for another name"
                )
            if account is not None and not account.created_by_owner(self.owner):
                if not self.policy.adopt_existing:
                    return (
                        f"{want.source}: service account {ref} exists and was not created by "
                        "the hub: ask for another name, or `juju config <hub> "
                        "service-account-adopt-existing=true`"
                    )
        if account is not None and not full:
            return None  # the ServiceAccount is created last: it exists, so the rest was made
        objects = self._read_objects(ref, account)
        mark = Mark(self.owner, want.relation)
        impostor = _impostor(objects, mark, self.owner)
        if impostor:
            return (
                f"{want.source}: {impostor} of account {ref} exists, was not created by the "
                "hub and is not spark8t's: delete it or ask for another name"
            )
        self._create_missing(objects, mark, account is None)
        return None

    def _create_missing(self, objects: AccountObjects, mark: Mark, new: bool) -> None:
        """Create the account's missing objects, the ServiceAccount last."""
        ref = objects.ref
        missing = missing_bodies(objects, mark)
        if missing and new:
            if self.gateway.ensure_namespace(ref.namespace, mark.annotations):
                logger.info("created namespace %s for account %s", ref.namespace, ref)
        # The ServiceAccount last: what the next pass lists is then a complete account, and a
        # creation cut short (a 403 on the Role) is resumed because nothing is listed yet.
        for body in sorted(missing, key=lambda item: item["kind"] == "ServiceAccount"):
            kind, name = body["kind"], body["metadata"]["name"]
            try:
                self.gateway.create_object(body)
                logger.info("account %s: created %s %s", ref, kind, name)
            except AlreadyExistsError:  # made meanwhile (by spark8t or a user): adopted as is
                pass

    def _read_objects(self, ref: AccountRef, account: KubeObject | None) -> AccountObjects:
        """The account's objects but the hub's Secret, its ServiceAccount being `account`."""
        names = AccountNames(ref)
        get = self.gateway.get_object
        return AccountObjects(
            ref,
            account,
            get("Role", ref.namespace, names.role),
            get("RoleBinding", ref.namespace, names.role_binding),
            get("Secret", ref.namespace, names.account_secret),
        )

    # -- release ----------------------------------------------------------------------------------

    def _release_quietly(self, ref: AccountRef) -> str | None:
        try:
            self.release(ref)
        except ForbiddenError:
            raise
        except KubeError as error:
            return _problem(f"{RELATION_NAME}: cannot release account {ref} yet", error)
        return None

    def release(self, ref: AccountRef) -> list[str]:
        """Delete the objects of `ref` that this hub created; returns what was deleted.

        Dependents go first and the ServiceAccount (what the next pass lists) last, so a
        release cut short is finished by the next pass. The hub's own Secret goes with the
        account, if this hub owns it. Objects without our annotation are left alone.

        Raises:
            KubeError: on API trouble (the next pass tries again).
        """
        gateway = self.gateway
        names = AccountNames(ref)
        deleted: list[str] = []
        for kind, name in (
            ("RoleBinding", names.role_binding),
            ("Role", names.role),
            ("Secret", names.account_secret),
        ):
            obj = gateway.get_object(kind, ref.namespace, name)
            if kind == "Secret" and obj is not None and obj.body.get("data"):
                continue  # the account's own configuration, written by its user: kept
            if obj is not None and obj.created_by_owner(self.owner):
                gateway.delete_object(kind, ref.namespace, name)
                deleted.append(f"{kind}/{name}")
        account = gateway.get_object("ServiceAccount", ref.namespace, ref.name)
        if account is None or not account.created_by_owner(self.owner):
            return deleted
        hub_secret = gateway.get_secret(ref.namespace, names.hub_secret)
        if hub_secret is not None and self.owner.owns(hub_secret):
            gateway.delete_secret(ref, names.hub_secret)
            deleted.append(f"Secret/{names.hub_secret}")
        gateway.delete_object("ServiceAccount", ref.namespace, ref.name)
        deleted.append(f"ServiceAccount/{ref.name}")
        logger.info("released account %s: deleted %s", ref, ", ".join(deleted))
        return deleted

    def release_all(self) -> list[str]:
        """Release every account this hub created (the application is being removed).

        Returns:
            What is left: the accounts that could not be released yet, and why.

        Raises:
            KubeError: the provided accounts cannot be listed.
        """
        left = []
        for ref in sorted(self.provided()):
            try:
                self.release(ref)
            except KubeError as error:
                left.append(f"account {ref} ({error.reason})")
        return left


def _problem(what: str, error: KubeError) -> str | None:
    """The problem to show when `what` failed with `error`; None for an outage (logged).

    An outage is named by the hub's own status (Maintenance, "retrying: ..."), and every
    relation waits for it alike: a Blocked status would ask the operator to fix what is not
    broken.
    """
    if isinstance(error, UnavailableError):
        logger.warning("%s: %s; %s", what, error.reason, RETRY_HINT)
        return None
    return f"{what} ({error.reason}); {RETRY_HINT}"


def _taken(want: Want, holder: Want) -> str:
    """The problem of a request for an account that belongs to another relation."""
    return (
        f"{want.source}: account {want.ref} belongs to {holder.source}: ask for another name, "
        "or `juju config <hub> service-account-sharing=true` to let relations share accounts"
    )


def _is_juju_model(namespace: KubeObject) -> bool:
    """Whether the namespace is a Juju model's (by the labels Juju puts on it)."""
    key, value = JUJU_MANAGED_BY
    return namespace.labels.get(key) == value or JUJU_MODEL_LABEL in namespace.labels


def _impostor(objects: AccountObjects, mark: Mark, owner: Owner) -> str | None:
    """The Role or RoleBinding the hub did not create and that is not exactly spark8t's."""
    expected = {(b["kind"], b["metadata"]["name"]): b for b in account_bodies(objects.ref, mark)}
    for obj in (objects.role, objects.role_binding):
        if obj is None or obj.created_by_owner(owner):
            continue
        body = expected[(obj.kind, obj.name)]
        fields = ("rules",) if obj.kind == "Role" else ("roleRef", "subjects")
        if any(_plain(obj.body.get(f)) != _plain(body[f]) for f in fields):
            return f"{obj.kind} {obj.name}"
    return None


def _plain(value: object) -> object:
    """`value` without empty fields (how the API server may echo what was sent)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# -- the Juju side --------------------------------------------------------------------------------


class AccountProvider(ops.Object):
    """The `spark-service-account` endpoint: requests in, accounts made, answers out."""

    def __init__(
        self,
        charm: ops.CharmBase,
        gateway: KubeGateway | Callable[[], KubeGateway],
        owner: Owner,
        relation_name: str = RELATION_NAME,
    ) -> None:
        """Create the provider; call from the charm's `__init__`.

        Args:
            charm: the charm.
            gateway: the Kubernetes gateway, or a function returning it (called on first use,
                so a charm can build its client lazily).
            owner: this hub's identity (stamped on what it creates).
            relation_name: the endpoint (interface `spark_service_account`).
        """
        super().__init__(charm, f"{relation_name}-accounts")
        self._charm = charm
        self._gateway_source = gateway
        self._manager: AccountManager | None = None
        self.owner = owner
        self.relation_name = relation_name
        self._full = False
        self._ensured = False
        # Observed before the library exists, so that the flag is up when the library's
        # events (and the charm's pass after them) run in the same dispatch.
        endpoint = charm.on[relation_name]
        for event in (endpoint.relation_created, endpoint.relation_changed):
            self.framework.observe(event, self._on_full_pass_event)
        self.framework.observe(endpoint.relation_broken, self._on_full_pass_event)
        for kind in FULL_PASS_EVENTS:
            self.framework.observe(getattr(charm.on, kind), self._on_full_pass_event)
        self.interface = SparkServiceAccountProvider(charm, relation_name)

    @property
    def events(self) -> list[ops.BoundEvent]:
        """The events after which the charm must run a pass (ensure, hub pass, publish)."""
        on = self.interface.on
        return [on.account_requested, on.account_request_invalid, on.account_released]

    @property
    def manager(self) -> AccountManager:
        """The cluster side (built on first use)."""
        if self._manager is None:
            source = self._gateway_source
            gateway = source() if callable(source) else source
            self._manager = AccountManager(gateway, self.owner, hub_namespace=self.model.name)
        return self._manager

    def _on_full_pass_event(self, _: ops.EventBase) -> None:
        self._full = True

    # -- ensure -----------------------------------------------------------------------------------

    def ensure_accounts(self, config: HubConfig | None, full: bool | None = None) -> list[str]:
        """Create every account the policy allows, release those no relation may keep.

        Leader only (a follower returns no problems and does nothing).

        Args:
            config: the hub's config, or None while it is invalid (nothing is then served).
            full: check the policy and repair what is missing of every account; by default
                only when this dispatch handles an event of the endpoint or one of
                `FULL_PASS_EVENTS`.

        Returns:
            Problems to show, each naming the relation and the fix.

        Raises:
            ForbiddenError: the hub lacks a permission (the charm asks for `juju trust`).
        """
        if not self._charm.unit.is_leader():
            return []
        self._ensured = True
        manager = self.manager
        if config is None:
            manager.granted = set()
            return [f"{self.relation_name}: no account is served until the config is fixed"]
        manager.policy, manager.scope = config.account_policy, config.scope
        problems: list[str] = []
        wants = self.wants(problems)
        return problems + manager.reconcile(wants, self._full if full is None else full)

    def wants(self, problems: list[str]) -> list[Want]:
        """What every live relation asks for; a malformed request keeps what it was given."""
        wants = []
        for relation in self.interface.relations:
            source = _describe(relation)
            try:
                request = self.interface.request(relation)
            except InvalidServiceAccountError as error:
                problems.append(f"{source}: {error}")
                request = None
            except Exception as error:  # one requirer never stops the others
                logger.error("%s: unreadable request (%s)", source, type(error).__name__)
                problems.append(f"{source}: unreadable request; fix the requirer's databag")
                request = None
            kept = request is None
            if request is None:
                request = self._answered(relation)
                if request is None:
                    continue
            wants.append(
                Want(
                    AccountRef(request.namespace, request.username),
                    source,
                    f"{relation.name}:{relation.id}",
                    relation.app.name if relation.app is not None else "",
                    request.skip_creation,
                    kept,
                )
            )
        return wants

    def _answered(self, relation: ops.Relation) -> ServiceAccountRequest | None:
        echo = self.interface.granted_service_account(relation)
        try:
            return ServiceAccountRequest.parse(echo) if echo else None
        except InvalidServiceAccountError:
            return None

    # -- publish ----------------------------------------------------------------------------------

    def publish(self, desired: SparkProperties | None, truststore: TrustStore | None) -> None:
        """Answer every request the pass served with `secret-extra` (leader, after the pass).

        `spark-properties` is `desired`, each value in its properties-file form (as the hub's
        Secret holds it: backslashes doubled, line breaks escaped); when None (the pass
        distributes nothing: waiting or blocked) each relation keeps what it was last given
        (`{}` if nothing): the store keeps no values, so this is read back from the answer
        itself. `resource-manifest` is built from the request (`core.manifest`), with the S3
        CA's `truststore` when there is one: no request. The Juju secret is written only when
        its content changes. A refused or incomplete request gets no (new) answer.
        """
        if not self._charm.unit.is_leader():
            return
        properties = desired.escaped() if desired is not None else None
        granted = self.manager.granted if self._ensured else set()
        for relation in self.interface.relations:
            try:
                request = self.interface.request(relation)
            except Exception:  # reported by ensure_accounts; the last answer stands
                continue
            if request is None:
                continue
            if f"{relation.name}:{relation.id}" not in granted:
                continue  # refused or incomplete (reported by ensure_accounts): not granted
            try:
                self._publish(relation, request, properties, truststore)
            except Exception as error:  # one requirer never stops the others
                logger.error("cannot answer %s: %s", _describe(relation), type(error).__name__)

    def _publish(
        self,
        relation: ops.Relation,
        request: ServiceAccountRequest,
        properties: dict[str, str] | None,
        truststore: TrustStore | None,
    ) -> None:
        ref = AccountRef(request.namespace, request.username)
        if properties is None:
            properties = _published_properties(self.interface.published(relation))
        ca = None
        if truststore is not None:
            files, digest = truststore.files, truststore.digest
            ca = TrustStoreSpec(ref.namespace, truststore.secret_name, files, digest, self.owner)
        manifest = render_manifest(ref, self.owner, ca)
        if self.interface.grant(
            relation, request, spark_properties=properties, resource_manifest=manifest
        ):
            logger.info("answered %s with account %s", _describe(relation), ref)


def _published_properties(published: dict[str, str] | None) -> dict[str, str]:
    """The `spark-properties` of an earlier answer (our own JSON), or `{}`."""
    try:
        loaded = json.loads((published or {}).get(SPARK_PROPERTIES, "{}"))
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(key): str(value) for key, value in loaded.items()}


def _describe(relation: ops.Relation) -> str:
    app = relation.app.name if relation.app is not None else "?"
    return f"{relation.name}:{relation.id} ({app})"


def describe_problems(problems: Iterable[str]) -> str:
    """One status line for the provider's problems: the first, and how many more."""
    listed = list(problems)
    if not listed:
        return ""
    more = f" (+{len(listed) - 1} more, see the log)" if len(listed) > 1 else ""
    return listed[0] + more
