"""The `spark-service-account` provider: Spark service accounts that other charms ask for.

A requirer (Kyuubi, a notebook, ...) asks for `<namespace>:<username>` over the
`spark_service_account` v0 interface. On every pass the leader:

1. **ensures** every requested account: creates the namespace if it is missing and the four
   objects spark8t makes (`core.manifest.account_bodies`), unless `skip-creation`; an existing
   spark8t account is adopted as it is (nothing written); objects the hub creates are stamped
   `integration-hub/created-by=<model-uuid>/<app>`;
2. **releases** every account this hub created that no live relation asks for any more (a changed
   `service-account`, a broken relation): it finds them with one list call by label and checks
   the annotation, so this needs no local state and survives restarts and store loss; it deletes
   only the objects that carry our annotation (an adopted account is never deleted);
3. after the hub's own pass (which writes `integrator-hub-conf-<username>` for every spark8t
   account), **publishes** `secret-extra`: `spark-properties` (JSON) and `resource-manifest`
   (YAML of the account's objects), updating the Juju secret only when its content changed.

`AccountManager` is the cluster side (no Juju), `AccountProvider` the Juju side (relations,
the library's events, the answer).

Requests: a *full* pass (after an event of the endpoint, `leader-elected` or `upgrade-charm`)
lists the hub's provided accounts once and reads every object of each requested account (4 GETs,
one more for the manifest). Any other pass lists once, reads only the ServiceAccount of accounts
the hub did not create, and publishes without an API call unless the properties changed (the
manifest is re-read) or the manifest still lacks the hub's Secret (1 GET).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ops
from charms.spark_integration_hub_k8s.v0.hub_service_account import (
    RESOURCE_MANIFEST,
    SPARK_PROPERTIES,
    InvalidServiceAccountError,
    ServiceAccountRequest,
    SparkServiceAccountProvider,
    properties_json,
)

from core.cluster import AccountRef, Owner
from core.config import AccountPolicy, ConfigError, HubConfig, Scope
from core.manifest import (
    AccountNames,
    AccountObjects,
    KubeObject,
    Mark,
    account_bodies,
    manifest_lists,
    missing_bodies,
    render_manifest,
)
from core.properties import SparkProperties
from k8s import AlreadyExistsError, ForbiddenError, KubeError

if TYPE_CHECKING:  # the client is imported only where a hook first talks to the API (`k8s`)
    from k8s.gateway import KubeGateway

logger = logging.getLogger(__name__)

RELATION_NAME = "spark-service-account"
RETRY_HINT = "the hub retries on the next event"
FULL_PASS_EVENTS = ("leader_elected", "upgrade_charm")
"""Charm events after which a pass reads every provided account (besides the endpoint's)."""
JUJU_MANAGED_BY = ("app.kubernetes.io/managed-by", "juju")
"""The label Juju puts on every model's namespace (with `model.juju.is/name=<model>`)."""
JUJU_MODEL_LABEL = "model.juju.is/name"


@dataclass(frozen=True)
class Want:
    """An account that something (a relation) asks for.

    Attributes:
        ref: the account.
        source: who asks, for messages (e.g. `spark-service-account:3 (kyuubi)`).
        relation: `<endpoint>:<id>`, stamped on what the hub creates (informational).
        skip_creation: the requirer said the account exists; the hub must not create it.
        kept: the request is malformed or gone, but the account it was given must not be
            released (nothing is created or checked for it).
    """

    ref: AccountRef
    source: str
    relation: str = ""
    skip_creation: bool = False
    kept: bool = False


# -- the cluster side -----------------------------------------------------------------------------


class AccountManager:
    """Creates, adopts and releases Spark accounts through the gateway; knows nothing of Juju.

    One instance serves one pass: it caches what it read for `objects`.
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
            policy: where accounts may be provided (default: the options' safe defaults).
            scope: `monitored-service-accounts`; an account outside it is refused.
            hub_namespace: the hub's own model namespace (reserved).
        """
        self.gateway = gateway
        self.owner = owner
        self.policy = policy or AccountPolicy()
        self.scope = scope or Scope()
        self.hub_namespace = hub_namespace
        self._read: dict[AccountRef, AccountObjects] = {}
        self._namespaces: dict[str, KubeObject | None] = {}
        self.complete: set[AccountRef] = set()
        """Accounts found complete and allowed by this pass: the only ones answered."""

    def reconcile(self, wants: Iterable[Want], full: bool = True) -> list[str]:
        """Ensure every wanted account; release what this hub created and nobody wants.

        Args:
            wants: the accounts asked for (several wants may name the same account: it is
                created unless every one of them says `skip_creation`).
            full: read every object of each account and create what is missing; otherwise an
                account this hub created (listed) costs nothing and an adopted one a GET.

        Returns:
            Problems, each naming who asked and the fix.

        Raises:
            ForbiddenError: the hub lacks a permission.
        """
        self._read = {}
        self._namespaces = {}
        self.complete = set()
        grouped: dict[AccountRef, list[Want]] = {}
        for want in wants:
            grouped.setdefault(want.ref, []).append(want)
        problems: list[str] = []
        # With no requirer, a failed list is retried next pass and worth no message.
        provided = self._provided(problems if grouped else [])
        for ref in sorted(grouped):
            problem = self._ensure_contained(grouped[ref], (provided or {}).get(ref), full)
            if problem:
                problems.append(problem)
        for ref in sorted(set(provided or {}) - set(grouped)):
            problem = self._release_quietly(ref)
            if problem:
                problems.append(problem)
        return problems

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
            problems.append(
                f"{RELATION_NAME}: cannot list provided accounts ({error.reason}); {RETRY_HINT}"
            )
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
        """Make one account exist (or check it does); returns a problem, or None.

        Args:
            wants: the wants of one account.
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
        try:
            refusal = self._refusal(first)
            if refusal:
                return refusal
            if all(w.skip_creation for w in live):
                account = self.gateway.get_object("ServiceAccount", ref.namespace, ref.name)
                problem = _skip_creation_problem(first, account) or self._foreign_problem(
                    first, account
                )
            else:
                problem = self._create(first, ours, full)
        except ForbiddenError:
            raise
        except KubeError as error:
            return (
                f"{first.source}: cannot create account {ref} yet ({error.reason}); {RETRY_HINT}"
            )
        if problem is None:
            self.complete.add(ref)
        return problem

    def _refusal(self, want: Want) -> str | None:
        """Why the policy refuses the account (scope, namespace), or None (1 GET)."""
        ref = want.ref
        if not self.scope.includes(ref.namespace, ref.name):
            return (
                f"{want.source}: account {ref} is outside monitored-service-accounts: "
                "ask for an account in scope, or widen monitored-service-accounts"
            )
        if ref.namespace not in self._namespaces:
            self._namespaces[ref.namespace] = self.gateway.get_object(
                "Namespace", "", ref.namespace
            )
        namespace = self._namespaces[ref.namespace]
        if not self.policy.allows(ref.namespace, reserved=self._reserved(namespace, ref)):
            return (
                f"{want.source}: namespace {ref.namespace} is not allowed for provided "
                "accounts (kube-*, default, the hub's model and Juju models are reserved): "
                f"add {ref.namespace} to service-account-namespaces to allow it"
            )
        if namespace is None and not self.policy.create_namespaces:
            return (
                f"{want.source}: namespace {ref.namespace} does not exist: create it, or set "
                "service-account-create-namespaces to true"
            )
        return None

    def _reserved(self, namespace: KubeObject | None, ref: AccountRef) -> bool:
        """Whether the namespace is reserved: by name, the hub's own, or a Juju model's."""
        if AccountPolicy.is_reserved_name(ref.namespace) or ref.namespace == self.hub_namespace:
            return True
        if namespace is None:
            return False
        labels = namespace.labels
        key, value = JUJU_MANAGED_BY
        return labels.get(key) == value or JUJU_MODEL_LABEL in labels

    def _foreign_problem(self, want: Want, account: KubeObject | None) -> str | None:
        """Why an account the hub did not create cannot be answered, or None."""
        if account is None or account.created_by_owner(self.owner):
            return None
        if not self.policy.adopt_existing:
            return (
                f"{want.source}: service account {want.ref} exists and was not created by the "
                "hub: ask for another name, or set service-account-adopt-existing to true"
            )
        return None

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
            foreign = self._foreign_problem(want, account)
            if foreign:
                return foreign
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
        found = self._create_missing(objects, mark, account is None)
        keys = AccountNames(ref).keys()[:4]
        self._read[ref] = AccountObjects(ref, *(found.get(key) for key in keys))
        return None

    def _create_missing(
        self, objects: AccountObjects, mark: Mark, new: bool
    ) -> dict[tuple[str, str], KubeObject]:
        """Create the account's missing objects; returns every object by (kind, name)."""
        ref = objects.ref
        missing = missing_bodies(objects, mark)
        if missing and new:
            if self.gateway.ensure_namespace(ref.namespace, mark.annotations):
                logger.info("created namespace %s for account %s", ref.namespace, ref)
        found = {(obj.kind, obj.name): obj for obj in objects.present()}
        # The ServiceAccount last: what the next pass lists is then a complete account, and a
        # creation cut short (a 403 on the Role) is resumed because nothing is listed yet.
        for body in sorted(missing, key=lambda item: item["kind"] == "ServiceAccount"):
            kind, name = body["kind"], body["metadata"]["name"]
            try:
                found[(kind, name)] = self.gateway.create_object(body)
                logger.info("account %s: created %s %s", ref, kind, name)
            except AlreadyExistsError:  # made meanwhile (by spark8t or a user): adopted as is
                obj = self.gateway.get_object(kind, ref.namespace, name)
                if obj is not None:
                    found[(kind, name)] = obj
        return found

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
            reason = error.reason
            return f"{RELATION_NAME}: cannot release account {ref} yet ({reason}); {RETRY_HINT}"
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
            Problems (accounts that could not be released yet).
        """
        problems = []
        for ref in sorted(self.provided()):
            problem = self._release_quietly(ref)
            if problem:
                problems.append(problem)
        return problems

    # -- what publish reads -----------------------------------------------------------------------

    def objects(self, ref: AccountRef) -> AccountObjects:
        """Every object of the account now (reusing what this pass read; 1 to 5 GETs)."""
        read = self._read.get(ref)
        if read is None:
            return self.gateway.get_account_objects(ref)
        hub = self.gateway.get_object("Secret", ref.namespace, AccountNames(ref).hub_secret)
        return AccountObjects(
            ref, read.service_account, read.role, read.role_binding, read.account_secret, hub
        )

    def manifest(self, ref: AccountRef) -> str | None:
        """The YAML manifest of the account, or None when its ServiceAccount does not exist."""
        objects = self.objects(ref)
        return render_manifest(objects) if objects.service_account is not None else None

    def hub_secret_exists(self, ref: AccountRef) -> bool:
        """Whether the hub's Secret of the account exists (1 GET)."""
        name = AccountNames(ref).hub_secret
        return self.gateway.get_object("Secret", ref.namespace, name) is not None


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


def _skip_creation_problem(want: Want, account: KubeObject | None) -> str | None:
    ref = want.ref
    if account is None:
        return (
            f"{want.source}: service account {ref} does not exist and skip-creation is true: "
            f"create it (`spark-client.service-account-registry create --username {ref.name} "
            f"--namespace {ref.namespace}`) or set skip-creation to false"
        )
    if not account.is_spark8t_account:
        return (
            f"{want.source}: service account {ref} is not a Spark account (no label "
            "app.kubernetes.io/managed-by=spark8t), so the hub gives it no properties"
        )
    return None


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

    def ensure_accounts(self, full: bool | None = None) -> list[str]:
        """Create or adopt every requested account, release the ones no longer requested.

        Leader only (a follower returns no problems and does nothing).

        Args:
            full: read every object of each account and repair what is missing; by default
                only when this dispatch handles an event of the endpoint, `leader-elected` or
                `upgrade-charm`.

        Returns:
            Problems to show, each naming the relation and the fix.

        Raises:
            ForbiddenError: the hub lacks a permission (the charm asks for `juju trust`).
        """
        if not self._charm.unit.is_leader():
            return []
        self._ensured = True
        manager = self.manager
        try:
            config = HubConfig.from_options(self._charm.config)
        except ConfigError as error:
            manager.complete = set()
            return [
                f"{self.relation_name}: no account is served until the config is fixed ({error})"
            ]
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

    def publish(self, desired: SparkProperties | None, full: bool | None = None) -> None:
        """Answer every valid request with `secret-extra` (leader only, after the hub's pass).

        `spark-properties` is `desired`, each value in its properties-file form (as the hub's
        Secret holds it: backslashes doubled, line breaks escaped); when None (the pass
        distributes nothing: waiting or blocked) each relation keeps what it was last given
        (`{}` if nothing): the store keeps no values, so this is read back from the answer
        itself. The Juju secret is written only when its content changes. The manifest is
        re-read on a full pass (see `ensure_accounts`), on the first answer, after a change of
        `service-account` or of the properties, and once the hub's Secret appears. An account
        that does not exist gets no answer. API trouble is logged and retried on the next pass.
        """
        if not self._charm.unit.is_leader():
            return
        full = self._full if full is None else full
        properties = desired.escaped() if desired is not None else None
        complete = self.manager.complete if self._ensured else set()
        for relation in self.interface.relations:
            try:
                request = self.interface.request(relation)
            except Exception:  # reported by ensure_accounts; the last answer stands
                continue
            if request is None:
                continue
            if AccountRef(request.namespace, request.username) not in complete:
                continue  # refused or incomplete (reported by ensure_accounts): not granted
            try:
                self._publish(relation, request, properties, full)
            except KubeError as error:
                logger.warning("cannot answer %s yet: %s", _describe(relation), error.reason)
            except Exception as error:  # one requirer never stops the others
                logger.error("cannot answer %s: %s", _describe(relation), type(error).__name__)

    def _publish(
        self,
        relation: ops.Relation,
        request: ServiceAccountRequest,
        properties: dict[str, str] | None,
        full: bool,
    ) -> None:
        ref = AccountRef(request.namespace, request.username)
        published = self.interface.published(relation)
        if properties is None:
            properties = _published_properties(published)
        manifest = None
        if (
            full
            or published is None
            or self.interface.granted_service_account(relation) != request.service_account
            or published.get(SPARK_PROPERTIES) != properties_json(properties)
            or self._hub_secret_appeared(ref, request, published)
        ):
            manifest = self.manager.manifest(ref)
            if manifest is None:
                return  # the account does not exist (yet): nothing to answer
        if self.interface.grant(
            relation, request, spark_properties=properties, resource_manifest=manifest
        ):
            logger.info("answered %s with account %s", _describe(relation), ref)

    def _hub_secret_appeared(
        self, ref: AccountRef, request: ServiceAccountRequest, published: dict[str, str]
    ) -> bool:
        if RESOURCE_MANIFEST not in request.requested_secrets:
            return False
        name = AccountNames(ref).hub_secret
        if manifest_lists(published.get(RESOURCE_MANIFEST, ""), "Secret", name):
            return False
        return self.manager.hub_secret_exists(ref)


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
