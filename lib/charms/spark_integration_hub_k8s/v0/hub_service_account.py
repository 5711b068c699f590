# Copyright 2026 The Spark Integration Hub authors.
# Licensed under the Apache License, Version 2.0.
"""Ask for, or provide, a Spark service account: the `spark_service_account` interface (v0).

A charm that runs Spark jobs (Kyuubi, a notebook server, ...) asks the Spark Integration Hub for
a Spark service account `<namespace>:<username>`; the hub creates it exactly as `spark-client`
(spark8t) would, and replies with a Juju secret holding the Spark properties the account
receives and the Kubernetes manifest of the account's objects.

It depends only on `ops`. It is not on Charmhub: copy this file into your charm's
`lib/charms/spark_integration_hub_k8s/v0/`. It is not the Charmhub library
`charms.spark_integration_hub_k8s.v0.spark_service_account` (LIBID `55536ebf…`, built on
data_interfaces), which `charmcraft fetch-lib` would fetch: that library's requirer speaks the
same wire format and works with this hub unchanged; its API differs (migration:
`docs/reference/spark-service-account.md`, "The library and the upstream library").

## The wire format

Requirer application databag:

| key                 | value                                                    |
|---------------------|----------------------------------------------------------|
| `service-account`   | `"<namespace>:<username>"`                               |
| `skip-creation`     | `"true"` (the account exists already) or `"false"`       |
| `requested-secrets` | `'["spark-properties", "resource-manifest"]'` (JSON)     |

Provider application databag:

| key               | value                                                      |
|-------------------|------------------------------------------------------------|
| `service-account` | the request it answers (echo)                              |
| `secret-extra`    | URI of a Juju secret granted to the relation               |

The `secret-extra` secret holds `spark-properties` (a JSON object: every Spark property the
account receives) and `resource-manifest` (YAML, one document per Kubernetes object of the
account). The provider updates its content when either changes (`properties_changed`).

## Requirer

```python
from charms.spark_integration_hub_k8s.v0.hub_service_account import (
    SparkServiceAccountRequirer,
)

class KyuubiCharm(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        self.spark_account = SparkServiceAccountRequirer(
            self, "spark-service-account", service_account="spark:kyuubi"
        )
        framework.observe(self.spark_account.on.account_granted, self._configure)
        framework.observe(self.spark_account.on.properties_changed, self._configure)
        framework.observe(self.spark_account.on.account_gone, self._configure)

    def _configure(self, event):
        properties = self.spark_account.spark_properties()  # None until granted
        ...
```

Call `request("ns:name", skip_creation=...)` (leader only) to ask for another account later.

## Provider

```python
self.accounts = SparkServiceAccountProvider(self, "spark-service-account")
framework.observe(self.accounts.on.account_requested, self._on_requested)
framework.observe(self.accounts.on.account_released, self._on_released)

def _on_requested(self, event):
    ...create event.namespace / event.username unless event.skip_creation...
    self.accounts.grant(event.relation, event.request, spark_properties={...},
                        resource_manifest="...")
```
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ops

# The unique Charmhub library identifier, never change it
LIBID = "465bd22a000646799a56591900639b3a"

# Increment this major API version when introducing breaking changes
LIBAPI = 0

# Increment this PATCH version before using `charmcraft publish-lib` or reset
# to 0 if you are raising the major API version
LIBPATCH = 3

logger = logging.getLogger(__name__)

DEFAULT_RELATION = "spark-service-account"
SERVICE_ACCOUNT = "service-account"
SKIP_CREATION = "skip-creation"
REQUESTED_SECRETS = "requested-secrets"
SECRET_EXTRA = "secret-extra"
SPARK_PROPERTIES = "spark-properties"
RESOURCE_MANIFEST = "resource-manifest"
SECRET_FIELDS: tuple[str, ...] = (SPARK_PROPERTIES, RESOURCE_MANIFEST)
"""What `secret-extra` may hold, and what a requirer asks for by default."""

MAX_USERNAME = 233
"""The longest username whose objects (`integrator-hub-conf-<username>`...) are valid names."""

MAX_FIELD = 4096
"""The longest databag field the library parses (a longer one is refused unread)."""
MAX_SECRET_FIELDS = 16
"""The most entries `requested-secrets` may list."""

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_USERNAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
"""Matched with `fullmatch` only (`$` would accept a final newline)."""


def _shown(value: str) -> str:
    """`value` quoted for a message, cut short so a hostile field cannot flood a status."""
    return repr(value if len(value) <= 64 else value[:64] + "...")


class InvalidServiceAccountError(ValueError):
    """A request whose fields are not valid; the message says what is wrong and how to fix it."""


def _parse_bool(value: str | None) -> bool:
    if value is None or value == "":
        return False
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidServiceAccountError(
            f'{SKIP_CREATION} is {_shown(value)}: set it to "true" or "false"'
        )
    return lowered == "true"


def _loads(text: str, limit: int | None = None) -> object:
    """`text` as JSON; None when it is longer than `limit`, not JSON, or nested too deep."""
    if limit is not None and len(text) > limit:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        return None


def _parse_secrets(value: str | None) -> tuple[str, ...]:
    if not value:
        return SECRET_FIELDS
    parsed = _loads(value, MAX_FIELD)
    if (
        not isinstance(parsed, list)
        or len(parsed) > MAX_SECRET_FIELDS
        or not all(isinstance(item, str) for item in parsed)
    ):
        raise InvalidServiceAccountError(
            f"{REQUESTED_SECRETS} is {_shown(value)}: set it to a JSON list such as "
            f"{json.dumps(list(SECRET_FIELDS))}"
        )
    return tuple(parsed)


@dataclass(frozen=True)
class ServiceAccountRequest:
    """A valid request for the Spark service account `namespace:username`.

    Attributes:
        namespace: a Kubernetes namespace name (DNS-1123 label).
        username: the service account's name (DNS-1123 subdomain, at most `MAX_USERNAME`).
        skip_creation: the account exists already; the provider must not create it.
        requested_secrets: the fields the requirer wants in `secret-extra`.
    """

    namespace: str
    username: str
    skip_creation: bool = False
    requested_secrets: tuple[str, ...] = SECRET_FIELDS

    @property
    def service_account(self) -> str:
        """`namespace:username`, as it travels on the wire."""
        return f"{self.namespace}:{self.username}"

    @classmethod
    def parse(
        cls,
        service_account: str,
        skip_creation: bool = False,
        requested_secrets: Sequence[str] = SECRET_FIELDS,
    ) -> ServiceAccountRequest:
        """Validate `namespace:username`.

        Raises:
            InvalidServiceAccountError: when it is not of that form or not valid Kubernetes names.
        """
        namespace, separator, username = service_account.partition(":")
        if (
            len(service_account) > MAX_FIELD
            or not separator
            or not namespace
            or not username
            or ":" in username
        ):
            raise InvalidServiceAccountError(
                f"{SERVICE_ACCOUNT} is {_shown(service_account)}: set it to "
                "`<namespace>:<username>`, e.g. `spark:alice`"
            )
        if len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
            raise InvalidServiceAccountError(
                f"namespace {_shown(namespace)} is not a valid Kubernetes namespace name: use "
                "lower-case letters, digits and '-' (at most 63 characters)"
            )
        if len(username) > MAX_USERNAME or not _USERNAME.fullmatch(username):
            raise InvalidServiceAccountError(
                f"username {_shown(username)} is not a valid Kubernetes name: use lower-case "
                f"letters, digits, '-' and '.' (at most {MAX_USERNAME} characters)"
            )
        return cls(namespace, username, skip_creation, tuple(requested_secrets))

    @classmethod
    def from_databag(cls, data: Mapping[str, str]) -> ServiceAccountRequest | None:
        """Read a requirer's application databag; None when it asks for nothing (yet).

        Raises:
            InvalidServiceAccountError: when a field is malformed.
        """
        value = data.get(SERVICE_ACCOUNT)
        if not value:
            return None
        return cls.parse(
            value,
            _parse_bool(data.get(SKIP_CREATION)),
            _parse_secrets(data.get(REQUESTED_SECRETS)),
        )

    def to_databag(self) -> dict[str, str]:
        """The requirer's application databag for this request."""
        return {
            SERVICE_ACCOUNT: self.service_account,
            SKIP_CREATION: "true" if self.skip_creation else "false",
            REQUESTED_SECRETS: json.dumps(list(self.requested_secrets), separators=(",", ":")),
        }


def properties_json(properties: Mapping[str, str]) -> str:
    """`spark-properties` as it is written in `secret-extra`: a JSON object, keys sorted."""
    return json.dumps(dict(properties), sort_keys=True)


def _secret_label(relation: ops.Relation) -> str:
    return f"{relation.name}.{relation.id}.{SECRET_EXTRA}"


def _relation_of_label(relation_name: str, label: str | None) -> int | None:
    """The relation id in a label made by `_secret_label` for `relation_name`, if it is one."""
    prefix, suffix = f"{relation_name}.", f".{SECRET_EXTRA}"
    if not label or not label.startswith(prefix) or not label.endswith(suffix):
        return None
    middle = label[len(prefix) : -len(suffix)]
    return int(middle) if middle.isdigit() else None


def _unique_id(uri: str | None) -> str:
    """The unique part of a secret URI (`secret:ID`, `secret://model/ID`), or ""."""
    return (uri or "").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


# -- events -----------------------------------------------------------------------------------


class _ServiceAccountEvent(ops.RelationEvent):
    """A relation event that carries the `service-account` value it is about."""

    def __init__(
        self,
        handle: ops.Handle,
        relation: ops.Relation,
        app: ops.Application | None = None,
        unit: ops.Unit | None = None,
        service_account: str | None = None,
    ):
        super().__init__(handle, relation, app, unit)
        self.service_account = service_account

    def snapshot(self) -> dict[str, Any]:
        """Serialise the event (for deferral)."""
        return {**super().snapshot(), "service_account": self.service_account}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Deserialise the event (after deferral)."""
        super().restore(snapshot)
        self.service_account = snapshot.get("service_account")


class AccountRequestedEvent(_ServiceAccountEvent):
    """A requirer asks for an account (or changed its request): `request` has it, parsed."""

    def __init__(
        self,
        handle: ops.Handle,
        relation: ops.Relation,
        app: ops.Application | None = None,
        unit: ops.Unit | None = None,
        service_account: str | None = None,
        skip_creation: bool = False,
        requested_secrets: Sequence[str] = SECRET_FIELDS,
    ):
        super().__init__(handle, relation, app, unit, service_account)
        self.skip_creation = skip_creation
        self.requested_secrets = tuple(requested_secrets)

    @property
    def request(self) -> ServiceAccountRequest:
        """The parsed request."""
        return ServiceAccountRequest.parse(
            self.service_account or "", self.skip_creation, self.requested_secrets
        )

    @property
    def namespace(self) -> str:
        """The requested account's namespace."""
        return self.request.namespace

    @property
    def username(self) -> str:
        """The requested account's name."""
        return self.request.username

    def snapshot(self) -> dict[str, Any]:
        """Serialise the event (for deferral)."""
        return {
            **super().snapshot(),
            "skip_creation": self.skip_creation,
            "requested_secrets": list(self.requested_secrets),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Deserialise the event (after deferral)."""
        super().restore(snapshot)
        self.skip_creation = bool(snapshot.get("skip_creation", False))
        self.requested_secrets = tuple(snapshot.get("requested_secrets", SECRET_FIELDS))


class AccountRequestInvalidEvent(_ServiceAccountEvent):
    """A requirer's request is malformed: `reason` says what is wrong and how to fix it."""

    def __init__(
        self,
        handle: ops.Handle,
        relation: ops.Relation,
        app: ops.Application | None = None,
        unit: ops.Unit | None = None,
        service_account: str | None = None,
        reason: str = "",
    ):
        super().__init__(handle, relation, app, unit, service_account)
        self.reason = reason

    def snapshot(self) -> dict[str, Any]:
        """Serialise the event (for deferral)."""
        return {**super().snapshot(), "reason": self.reason}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Deserialise the event (after deferral)."""
        super().restore(snapshot)
        self.reason = str(snapshot.get("reason", ""))


class AccountReleasedEvent(_ServiceAccountEvent):
    """The relation is gone: release its account.

    `service_account` is the last request this unit saw on the relation, or None when it saw
    none (the relation's data is no longer readable when it breaks).
    """


class AccountGrantedEvent(_ServiceAccountEvent):
    """The provider answered the request: `secret-extra` is readable (may be emitted again)."""


class PropertiesChangedEvent(_ServiceAccountEvent):
    """The provider changed the content of `secret-extra` (new properties or manifest)."""


class AccountGoneEvent(_ServiceAccountEvent):
    """The relation is gone: the account is no longer provided."""


class SparkServiceAccountProviderEvents(ops.ObjectEvents):
    """Events of the provider side."""

    account_requested = ops.EventSource(AccountRequestedEvent)
    account_request_invalid = ops.EventSource(AccountRequestInvalidEvent)
    account_released = ops.EventSource(AccountReleasedEvent)


class SparkServiceAccountRequirerEvents(ops.ObjectEvents):
    """Events of the requirer side."""

    account_granted = ops.EventSource(AccountGrantedEvent)
    properties_changed = ops.EventSource(PropertiesChangedEvent)
    account_gone = ops.EventSource(AccountGoneEvent)


# -- provider ---------------------------------------------------------------------------------


class SparkServiceAccountProvider(ops.Object):
    """The provider side: read requests, answer them with a granted `secret-extra` secret."""

    on = SparkServiceAccountProviderEvents()  # pyright: ignore[reportAssignmentType]
    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, relation_name: str = DEFAULT_RELATION) -> None:
        super().__init__(charm, relation_name)
        self.charm = charm
        self.relation_name = relation_name
        self._stored.set_default(seen={})
        events = charm.on[relation_name]
        self.framework.observe(events.relation_changed, self._on_relation_changed)
        self.framework.observe(events.relation_broken, self._on_relation_broken)
        self.framework.observe(charm.on.secret_remove, self._on_secret_remove)

    @property
    def relations(self) -> list[ops.Relation]:
        """The live relations of the endpoint (a breaking one is not listed)."""
        return list(self.model.relations[self.relation_name])

    def request(self, relation: ops.Relation) -> ServiceAccountRequest | None:
        """The relation's request, or None when the requirer has not asked yet.

        Raises:
            InvalidServiceAccountError: when the requirer's fields are malformed.
        """
        if relation.app is None:
            return None
        return ServiceAccountRequest.from_databag(relation.data[relation.app])

    def granted_service_account(self, relation: ops.Relation) -> str | None:
        """The `service-account` this provider last answered on the relation (leader only)."""
        return relation.data[self.model.app].get(SERVICE_ACCOUNT) or None

    def published(self, relation: ops.Relation) -> dict[str, str] | None:
        """The content of the relation's `secret-extra` secret, or None before `grant`."""
        secret = self._secret(relation)
        return secret.peek_content() if secret is not None else None

    def grant(
        self,
        relation: ops.Relation,
        request: ServiceAccountRequest | str,
        *,
        spark_properties: Mapping[str, str] | None = None,
        resource_manifest: str | None = None,
    ) -> bool:
        """Answer `request` on `relation` (leader only); write only what changed.

        Creates the relation's secret (granted to the relation) or updates its content when it
        differs, then writes `service-account` and `secret-extra` in the provider databag.
        A field given as None keeps its published value (empty before the first grant).

        Returns:
            Whether anything was written (secret content or databag).
        """
        if isinstance(request, str):
            request = ServiceAccountRequest.parse(request)
        secret = self._secret(relation)
        current = secret.peek_content() if secret is not None else {}
        content = _content(request, current, spark_properties, resource_manifest)
        changed = False
        if secret is None:
            secret = self.model.app.add_secret(
                content,
                label=_secret_label(relation),
                description=f"Spark account {request.service_account}: properties and manifest",
            )
            changed = True
        elif content != current:
            secret.set_content(content)
            changed = True
        databag = relation.data[self.model.app]
        updates = {SERVICE_ACCOUNT: request.service_account}
        if not databag.get(SECRET_EXTRA):
            secret.grant(relation)
            updates[SECRET_EXTRA] = secret.id or secret.get_info().id
        updates = {key: value for key, value in updates.items() if databag.get(key) != value}
        if updates:
            databag.update(updates)
            changed = True
        self._remember(relation, request.service_account)
        return changed

    def revoke(self, relation: ops.Relation) -> None:
        """Withdraw the answer on `relation` (leader only): remove its secret and databag keys."""
        secret = self._secret(relation)
        if secret is not None:
            secret.remove_all_revisions()
        if relation.active:
            databag = relation.data[self.model.app]
            for key in (SERVICE_ACCOUNT, SECRET_EXTRA):
                databag.pop(key, None)

    def _secret(self, relation: ops.Relation) -> ops.Secret | None:
        try:
            return self.model.get_secret(label=_secret_label(relation))
        except ops.SecretNotFoundError:
            return None

    def _remember(self, relation: ops.Relation, service_account: str) -> None:
        """Keep the last request seen on the relation (for `account_released`)."""
        if self._stored.seen.get(str(relation.id)) != service_account:
            self._stored.seen[str(relation.id)] = service_account

    def _on_relation_changed(self, event: ops.RelationChangedEvent) -> None:
        app = event.relation.app
        value = event.relation.data[app].get(SERVICE_ACCOUNT) if app else None
        try:
            request = self.request(event.relation)
        except InvalidServiceAccountError as error:
            self.on.account_request_invalid.emit(
                event.relation, app, event.unit, service_account=value, reason=str(error)
            )
            return
        if request is None:
            return
        self._remember(event.relation, request.service_account)
        self.on.account_requested.emit(
            event.relation,
            app,
            event.unit,
            service_account=request.service_account,
            skip_creation=request.skip_creation,
            requested_secrets=request.requested_secrets,
        )

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        if self.model.unit.is_leader():
            secret = self._secret(event.relation)
            if secret is not None:
                secret.remove_all_revisions()
        seen = self._stored.seen.get(str(event.relation.id))
        if str(event.relation.id) in self._stored.seen:
            del self._stored.seen[str(event.relation.id)]
        self.on.account_released.emit(event.relation, event.app, None, service_account=seen)

    def _on_secret_remove(self, event: ops.SecretRemoveEvent) -> None:
        """Remove revisions of our secrets that no requirer tracks any more."""
        if _relation_of_label(self.relation_name, event.secret.label) is not None:
            event.remove_revision()


def _content(
    request: ServiceAccountRequest,
    current: Mapping[str, str],
    spark_properties: Mapping[str, str] | None,
    resource_manifest: str | None,
) -> dict[str, str]:
    """The secret's content: `spark-properties` always, `resource-manifest` if asked for."""
    properties = (
        properties_json(spark_properties)
        if spark_properties is not None
        else current.get(SPARK_PROPERTIES) or "{}"
    )
    content = {SPARK_PROPERTIES: properties}
    manifest = (
        resource_manifest if resource_manifest is not None else current.get(RESOURCE_MANIFEST)
    )
    if manifest and RESOURCE_MANIFEST in request.requested_secrets:
        content[RESOURCE_MANIFEST] = manifest
    return content


# -- requirer ---------------------------------------------------------------------------------


class SparkServiceAccountRequirer(ops.Object):
    """The requirer side: ask for an account, read the provider's answer."""

    on = SparkServiceAccountRequirerEvents()  # pyright: ignore[reportAssignmentType]

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = DEFAULT_RELATION,
        service_account: str | None = None,
        skip_creation: bool = False,
        requested_secrets: Sequence[str] = SECRET_FIELDS,
    ) -> None:
        """Create the requirer.

        Args:
            charm: the charm.
            relation_name: the endpoint (interface `spark_service_account`).
            service_account: `namespace:username` to ask for on every new relation (None: ask
                later with `request`).
            skip_creation: the account exists already; the provider must not create it.
            requested_secrets: the fields wanted in `secret-extra`.
        """
        super().__init__(charm, relation_name)
        self.charm = charm
        self.relation_name = relation_name
        self._default = (
            ServiceAccountRequest.parse(service_account, skip_creation, requested_secrets)
            if service_account
            else None
        )
        events = charm.on[relation_name]
        self.framework.observe(events.relation_created, self._on_relation_created)
        self.framework.observe(events.relation_changed, self._on_relation_changed)
        self.framework.observe(events.relation_broken, self._on_relation_broken)
        self.framework.observe(charm.on.secret_changed, self._on_secret_changed)

    @property
    def relations(self) -> list[ops.Relation]:
        """The live relations of the endpoint."""
        return list(self.model.relations[self.relation_name])

    def request(
        self,
        service_account: str,
        skip_creation: bool = False,
        requested_secrets: Sequence[str] = SECRET_FIELDS,
        relation: ops.Relation | None = None,
    ) -> ServiceAccountRequest:
        """Ask for `service_account` on `relation` (default: every relation); leader only.

        Raises:
            InvalidServiceAccountError: when `service_account` is not a valid `namespace:name`.
        """
        request = ServiceAccountRequest.parse(service_account, skip_creation, requested_secrets)
        self._default = request
        if self.model.unit.is_leader():
            for target in [relation] if relation is not None else self.relations:
                self._write(target, request)
        return request

    def requested(self, relation: ops.Relation | None = None) -> ServiceAccountRequest | None:
        """What this application asks for on the relation (leader only), if anything valid."""
        relation = relation or self._first()
        if relation is None:
            return None
        try:
            return ServiceAccountRequest.from_databag(relation.data[self.model.app])
        except InvalidServiceAccountError:
            return None

    def granted_service_account(self, relation: ops.Relation | None = None) -> str | None:
        """The account the provider answered for, or None."""
        relation = relation or self._first()
        if relation is None or relation.app is None:
            return None
        return relation.data[relation.app].get(SERVICE_ACCOUNT) or None

    def is_granted(self, relation: ops.Relation | None = None) -> bool:
        """Whether the provider answered this application's current request."""
        relation = relation or self._first()
        if relation is None or relation.app is None:
            return False
        data = relation.data[relation.app]
        request = self.requested(relation) if self.model.unit.is_leader() else None
        wanted = request.service_account if request else data.get(SERVICE_ACCOUNT)
        return bool(data.get(SECRET_EXTRA)) and data.get(SERVICE_ACCOUNT) == wanted

    def secret_content(self, relation: ops.Relation | None = None) -> dict[str, str] | None:
        """The latest content of `secret-extra` (tracking it), or None before the answer."""
        relation = relation or self._first()
        if relation is None or relation.app is None:
            return None
        uri = relation.data[relation.app].get(SECRET_EXTRA)
        if not uri:
            return None
        try:
            secret = self.model.get_secret(id=uri, label=_secret_label(relation))
            return secret.get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as error:
            logger.warning("cannot read %s of relation %d: %s", SECRET_EXTRA, relation.id, error)
            return None

    def spark_properties(self, relation: ops.Relation | None = None) -> dict[str, str] | None:
        """The Spark properties the account receives, or None before the provider answers."""
        content = self.secret_content(relation)
        if content is None or SPARK_PROPERTIES not in content:
            return None
        parsed = _loads(content[SPARK_PROPERTIES])
        if not isinstance(parsed, dict):
            logger.warning("%s is not a JSON object", SPARK_PROPERTIES)
            return None
        return {str(key): str(value) for key, value in parsed.items()}

    def resource_manifest(self, relation: ops.Relation | None = None) -> str | None:
        """The YAML manifest of the account's Kubernetes objects, or None before the answer."""
        content = self.secret_content(relation)
        return None if content is None else content.get(RESOURCE_MANIFEST)

    def _first(self) -> ops.Relation | None:
        relations = self.relations
        return relations[0] if relations else None

    def _write(self, relation: ops.Relation, request: ServiceAccountRequest) -> None:
        databag = relation.data[self.model.app]
        updates = {k: v for k, v in request.to_databag().items() if databag.get(k) != v}
        if updates:
            databag.update(updates)

    def _on_relation_created(self, event: ops.RelationCreatedEvent) -> None:
        if self._default is not None and self.model.unit.is_leader():
            self._write(event.relation, self._default)

    def _on_relation_changed(self, event: ops.RelationChangedEvent) -> None:
        if self.is_granted(event.relation):
            self.on.account_granted.emit(
                event.relation,
                event.app,
                event.unit,
                service_account=self.granted_service_account(event.relation),
            )

    def _relation_of_secret(self, secret: ops.Secret) -> ops.Relation | None:
        """The relation whose `secret-extra` is `secret`: by the label we set, else by URI."""
        relation_id = _relation_of_label(self.relation_name, secret.label)
        if relation_id is not None:
            return self.model.get_relation(self.relation_name, relation_id)
        unique = _unique_id(secret.id)
        for relation in self.relations:
            uri = relation.data[relation.app].get(SECRET_EXTRA) if relation.app else None
            if unique and _unique_id(uri) == unique:
                return relation
        return None

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        self.on.account_gone.emit(event.relation, event.app, None, service_account=None)

    def _on_secret_changed(self, event: ops.SecretChangedEvent) -> None:
        relation = self._relation_of_secret(event.secret)
        if relation is None:
            return
        self.on.properties_changed.emit(
            relation,
            relation.app,
            None,
            service_account=self.granted_service_account(relation),
        )
