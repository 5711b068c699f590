"""Spark service accounts the hub provides: the objects spark8t makes, and their manifest.

`spark-client service-account-registry create --username U --namespace NS` (spark8t 1.6) makes
four objects in NS; the hub makes the very same ones when another charm asks for an account over
`spark-service-account` (see `docs/reference/spark-service-account.md`):

| kind           | name                 | labels                          |
|----------------|----------------------|---------------------------------|
| ServiceAccount | `U`                  | generated-by, managed-by=spark8t |
| Role           | `U-role`             | generated-by, managed-by=spark8t |
| RoleBinding    | `U-role-binding`     | generated-by, managed-by=spark8t |
| Secret         | `spark8t-sa-conf-U`  | generated-by=spark8t            |

Every object the hub creates also carries the annotation `integration-hub/created-by` =
`<model-uuid>/<app>`: it is how a release, after any restart and without any local state, knows
what it may delete (only what it created: an adopted account is never deleted), and
`integration-hub/relation`, the relation the account belongs to. The account's ServiceAccount
also carries the label `integration-hub/provided-by=<app>`, so the hub finds its accounts with
one list call.

The `resource-manifest` answered to a requirer (`manifest_documents`) is built from the same
templates, without the hub's marks: a requirer that asked with `skip-creation` applies it
itself (Kubeflow's resource-dispatcher does, in every profile namespace).

Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.cluster import (
    MANAGED_BY,
    SECRET_PREFIX,
    AccountRef,
    Owner,
    TrustStoreSpec,
    truststore_body,
)

GENERATED_BY = "app.kubernetes.io/generated-by"
SPARK8T = "spark8t"
ACCOUNT_SECRET_PREFIX = "spark8t-sa-conf-"
CREATED_BY_ANNOTATION = "integration-hub/created-by"
"""`<model-uuid>/<app>` of the hub that created the object (absent on adopted objects)."""
RELATION_ANNOTATION = "integration-hub/relation"
"""`<endpoint>:<relation-id>` that asked for the account: the relation it belongs to, and is
released with (relation ids are never reused in a model)."""
JUJU_APP_LABEL = "app.kubernetes.io/name"
"""The label Juju puts on every pod of an application: `<application>`."""
PROVIDED_LABEL = "integration-hub/provided-by"
"""On the ServiceAccounts, Roles and RoleBindings the hub created: the hub's application name
(one list call finds its accounts; `kubectl -l` finds them all after a forced removal)."""

SPARK8T_LABELS: dict[str, str] = {GENERATED_BY: SPARK8T, MANAGED_BY: SPARK8T}
RBAC = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC}/v1"

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class AccountNames:
    """The names of the objects of the account `ref`."""

    ref: AccountRef

    @property
    def service_account(self) -> str:
        """`U`."""
        return self.ref.name

    @property
    def role(self) -> str:
        """`U-role`."""
        return f"{self.ref.name}-role"

    @property
    def role_binding(self) -> str:
        """`U-role-binding`."""
        return f"{self.ref.name}-role-binding"

    @property
    def account_secret(self) -> str:
        """`spark8t-sa-conf-U`: the account's own configuration (spark8t's)."""
        return f"{ACCOUNT_SECRET_PREFIX}{self.ref.name}"

    @property
    def hub_secret(self) -> str:
        """`integrator-hub-conf-U`: the hub's properties (written by the hub's pass)."""
        return f"{SECRET_PREFIX}{self.ref.name}"

    def keys(self) -> list[tuple[str, str]]:
        """(kind, name) of every object of the account, in manifest order."""
        return [
            ("ServiceAccount", self.service_account),
            ("Role", self.role),
            ("RoleBinding", self.role_binding),
            ("Secret", self.account_secret),
            ("Secret", self.hub_secret),
        ]


@dataclass(frozen=True)
class Mark:
    """What the hub stamps on objects it creates for a relation."""

    owner: Owner
    relation: str = ""

    @property
    def annotations(self) -> dict[str, str]:
        """`created-by` (and, when known, the relation that asked)."""
        marks = {CREATED_BY_ANNOTATION: self.owner.annotation}
        if self.relation:
            marks[RELATION_ANNOTATION] = self.relation
        return marks

    @property
    def provided_label(self) -> dict[str, str]:
        """The label that lists the hub's provided accounts."""
        return {PROVIDED_LABEL: provided_value(self.owner)}


def provided_value(owner: Owner) -> str:
    """The value of `PROVIDED_LABEL` for `owner` (its app name, made a valid label value)."""
    value = _LABEL_VALUE.sub("-", owner.app)[:63].strip("-_.")
    return value or "hub"


@dataclass(frozen=True)
class KubeObject:
    """One object as read from the API: identity, marks and its whole body (API dict form)."""

    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> KubeObject:
        """Build from an API dict (`apiVersion`, `kind`, `metadata`, ...)."""
        meta = body.get("metadata") or {}
        return cls(
            kind=str(body.get("kind") or ""),
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            body=dict(body),
        )

    @property
    def created_by(self) -> str | None:
        """The `created-by` annotation, or None on an object the hub did not create."""
        return self.annotations.get(CREATED_BY_ANNOTATION)

    def created_by_owner(self, owner: Owner) -> bool:
        """Whether this hub (`owner`) created the object."""
        return self.created_by == owner.annotation

    @property
    def is_spark8t_account(self) -> bool:
        """Whether this is a ServiceAccount that spark8t lists (label managed-by=spark8t)."""
        return self.kind == "ServiceAccount" and self.labels.get(MANAGED_BY) == SPARK8T


@dataclass(frozen=True)
class AccountObjects:
    """The objects of one account as they are in the cluster (None: absent)."""

    ref: AccountRef
    service_account: KubeObject | None = None
    role: KubeObject | None = None
    role_binding: KubeObject | None = None
    account_secret: KubeObject | None = None
    hub_secret: KubeObject | None = None

    def present(self) -> list[KubeObject]:
        """The objects that exist, in manifest order."""
        return [obj for obj in self._all() if obj is not None]

    def get(self, kind: str, name: str) -> KubeObject | None:
        """The object of that kind and name, if it exists."""
        for (obj_kind, obj_name), obj in zip(AccountNames(self.ref).keys(), self._all()):
            if (obj_kind, obj_name) == (kind, name):
                return obj
        return None

    def _all(self) -> list[KubeObject | None]:
        return [
            self.service_account,
            self.role,
            self.role_binding,
            self.account_secret,
            self.hub_secret,
        ]


def namespace_body(name: str, mark: Mark) -> dict[str, Any]:
    """The Namespace the hub creates when a requested account's namespace is missing."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "annotations": mark.annotations},
    }


def account_bodies(ref: AccountRef, mark: Mark) -> list[dict[str, Any]]:
    """The four objects spark8t makes for `ref`, marked as the hub's, in creation order."""
    bodies = spark8t_bodies(ref)
    for body in bodies:
        body["metadata"]["annotations"] = mark.annotations
        if body["kind"] != "Secret":  # the account's own configuration is its user's
            body["metadata"]["labels"] |= mark.provided_label
    return bodies


def spark8t_bodies(ref: AccountRef) -> list[dict[str, Any]]:
    """The four objects `spark-client service-account-registry create` makes for `ref`."""
    names = AccountNames(ref)

    def meta(name: str, labels: Mapping[str, str]) -> dict[str, Any]:
        return {"name": name, "namespace": ref.namespace, "labels": dict(labels)}

    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(names.service_account, SPARK8T_LABELS),
        },
        {
            "apiVersion": RBAC_VERSION,
            "kind": "Role",
            "metadata": meta(names.role, SPARK8T_LABELS),
            "rules": role_rules(ref.name),
        },
        {
            "apiVersion": RBAC_VERSION,
            "kind": "RoleBinding",
            "metadata": meta(names.role_binding, SPARK8T_LABELS),
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": names.role},
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": names.service_account,
                    "namespace": ref.namespace,
                }
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(names.account_secret, {GENERATED_BY: SPARK8T}),
            "type": "Opaque",
        },
    ]


def role_rules(username: str) -> list[dict[str, Any]]:
    """The rules of spark8t's `U-role` (its `role_yaml.tmpl`, in its order)."""
    return [
        {
            "apiGroups": [""],
            "resources": ["pods", "configmaps", "services", "serviceaccounts"],
            "verbs": [
                "create",
                "get",
                "list",
                "watch",
                "delete",
                "deletecollection",
                "update",
                "patch",
            ],
        },
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [f"{ACCOUNT_SECRET_PREFIX}{username}"],
            "verbs": ["get", "patch", "update"],
        },
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [f"{SECRET_PREFIX}{username}"],
            "verbs": ["get"],
        },
    ]


def missing_bodies(objects: AccountObjects, mark: Mark) -> list[dict[str, Any]]:
    """The spark8t objects of the account that do not exist yet, in creation order."""
    return [
        body
        for body in account_bodies(objects.ref, mark)
        if objects.get(body["kind"], body["metadata"]["name"]) is None
    ]


def manifest_documents(
    ref: AccountRef, owner: Owner, truststore: TrustStoreSpec | None = None
) -> list[dict[str, Any]]:
    """What a requirer needs to make the account `ref` itself, and the CA it must trust.

    The ServiceAccount, Role and RoleBinding exactly as spark8t makes them; the hub's Secret
    `integrator-hub-conf-<username>` with the hub's labels and no data (the hub's pass fills
    it in once the account exists, so whoever applies the manifest never owns the values); and
    the truststore Secret, with its data, when S3 sends a CA chain. Never the account's own
    `spark8t-sa-conf-<username>`: it is its user's, and whoever applies a manifest may delete
    what it applied. No hub mark either: the hub releases only what it created itself.
    """
    names = AccountNames(ref)
    documents = [
        body for body in spark8t_bodies(ref) if body["metadata"]["name"] != names.account_secret
    ]
    documents.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": names.hub_secret,
                "namespace": ref.namespace,
                "labels": owner.labels,
            },
            "type": "Opaque",
        }
    )
    if truststore is not None:
        documents.append(truststore_body(truststore))
    return documents


def render_manifest(
    ref: AccountRef, owner: Owner, truststore: TrustStoreSpec | None = None
) -> str:
    """`manifest_documents` as YAML: one document per object, `---` between."""
    return yaml.safe_dump_all(
        manifest_documents(ref, owner, truststore), sort_keys=True, default_flow_style=False
    )
