"""What the hub knows of cluster objects: typed views read from, and specs written to, the API.

These are the models at the Kubernetes edge. The gateway (`k8s.py`) converts API objects into
them and back; nothing else sees an API object.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SPARK8T_SELECTOR: dict[str, Any] = {"app.kubernetes.io/managed-by": "spark8t"}
"""The label of a Spark service account (what `service-account-registry list` selects)."""

MANAGED_BY = "app.kubernetes.io/managed-by"
HUB_MANAGER = "integration-hub"
HUB_SECRET_SELECTOR: dict[str, Any] = {MANAGED_BY: HUB_MANAGER}
"""The label on every hub Secret: ours, another hub's, and the reference charm's."""

APP_LABEL = "integration-hub/app"
OWNER_ANNOTATION = "integration-hub/owner"
HASH_ANNOTATION = "integration-hub/config-hash"
SECRET_PREFIX = "integrator-hub-conf-"
TRUSTSTORE_SECRET = f"{SECRET_PREFIX}truststore"
"""The name of the hub's truststore Secret, the same in every namespace it serves.

Kyuubi finds the truststore in the `resource-manifest` as the Secret whose name starts with
`integrator-hub-conf-truststore`, so the account whose hub Secret would have this name
(`TRUSTSTORE_ACCOUNT`) is never served: its Secret would be the truststore."""
TRUSTSTORE_ACCOUNT = TRUSTSTORE_SECRET.removeprefix(SECRET_PREFIX)
LEGACY_TRUSTSTORE_SECRET = "integration-hub-truststore"
"""The truststore's name before Kyuubi read it from the manifest: replaced, then deleted."""


MAX_NAMESPACE = 63
"""A namespace is a DNS-1123 label."""
MAX_ACCOUNT_NAME = 253 - len(SECRET_PREFIX)
"""The longest service-account name whose hub Secret name is a valid DNS-1123 subdomain."""
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def is_namespace_name(text: str) -> bool:
    """Whether `text` is a valid namespace name (DNS-1123 label, at most 63 characters)."""
    return len(text) <= MAX_NAMESPACE and _DNS_LABEL.fullmatch(text) is not None


def secret_name(account: str) -> str:
    """The name of the hub's Secret for `account` (spelled "integrator", as spark8t reads it)."""
    return f"{SECRET_PREFIX}{account}"


@dataclass(frozen=True, order=True)
class AccountRef:
    """A service account's identity: `namespace:name`."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> AccountRef:
        """Parse `namespace:name`: a DNS-1123 label, `:`, a DNS-1123 subdomain.

        Anything else (`/`, `..`, `?`, `#`, whitespace, upper case, a final newline, too long)
        is refused, so a parsed reference is always safe to put in an API path.

        Raises:
            ValueError: when `text` is not of that form (the message never repeats `text`).
        """
        namespace, separator, name = text.partition(":")
        if not separator or not is_namespace_name(namespace):
            raise ValueError(
                "expected `namespace:name`, the namespace a DNS-1123 label (lower-case letters, "
                f"digits and '-', at most {MAX_NAMESPACE} characters)"
            )
        if len(name) > MAX_ACCOUNT_NAME or _DNS_SUBDOMAIN.fullmatch(name) is None:
            raise ValueError(
                "expected `namespace:name`, the name a DNS-1123 subdomain (lower-case letters, "
                f"digits, '-' and '.', at most {MAX_ACCOUNT_NAME} characters)"
            )
        return cls(namespace, name)

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}"


@dataclass(frozen=True)
class Account:
    """A Spark service account as listed from the cluster."""

    ref: AccountRef
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveSecret:
    """A hub Secret as listed from the cluster, with `data` decoded to text.

    Attributes:
        ref: the account the Secret belongs to, by name (`integrator-hub-conf-<name>`).
        resource_version: for optimistic-concurrency replace.
        labels: the Secret's labels.
        annotations: the Secret's annotations.
        data: encoded key → value; a value that is not UTF-8 is kept as `None` (never in sync).
    """

    ref: AccountRef
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    data: Mapping[str, str | None]

    @property
    def owner(self) -> str | None:
        """The owner annotation (`<model-uuid>/<app>`), or None for a Secret without one."""
        return self.annotations.get(OWNER_ANNOTATION)


@dataclass(frozen=True)
class Owner:
    """The identity of this hub application, stamped on every Secret it writes."""

    app: str
    model_uuid: str

    @property
    def annotation(self) -> str:
        """The value of the owner annotation."""
        return f"{self.model_uuid}/{self.app}"

    @property
    def labels(self) -> dict[str, str]:
        """The labels of every Secret we write: the shared managed-by label and our app."""
        return {MANAGED_BY: HUB_MANAGER, APP_LABEL: self.app}

    def annotations(self, digest: str) -> dict[str, str]:
        """The annotations of a Secret we write: our identity and the digest of its data."""
        return {OWNER_ANNOTATION: self.annotation, HASH_ANNOTATION: digest}

    def owns(self, secret: LiveSecret | LiveTrustStore) -> bool:
        """Whether `secret` was written by this hub."""
        return secret.owner == self.annotation

    def may_adopt(self, secret: LiveSecret) -> bool:
        """Whether `secret` is the reference charm's (managed-by label, no owner annotation)."""
        return secret.owner is None and secret.labels.get(MANAGED_BY) == HUB_MANAGER


@dataclass(frozen=True)
class LiveTrustStore:
    """The hub's truststore Secret of one namespace, as listed (binary data kept as bytes)."""

    namespace: str
    name: str
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    files: Mapping[str, bytes]

    @property
    def owner(self) -> str | None:
        """The owner annotation, or None."""
        return self.annotations.get(OWNER_ANNOTATION)


@dataclass(frozen=True)
class HubSecrets:
    """Every Secret labelled `managed-by=integration-hub`, sorted by what it is for."""

    accounts: list[LiveSecret]
    truststores: list[LiveTrustStore]


@dataclass(frozen=True)
class TrustStoreSpec:
    """A truststore Secret to write into one namespace.

    Attributes:
        namespace: where.
        name: the Secret's name (the same in every namespace).
        files: Secret key → content.
        digest: identifies `files` (stored as the hash annotation).
        owner: our identity.
    """

    namespace: str
    name: str
    files: Mapping[str, bytes]
    digest: str
    owner: Owner


@dataclass(frozen=True)
class SecretSpec:
    """A hub Secret to write: the whole object, rebuilt from desired state on every write."""

    account: Account
    data: Mapping[str, str]
    data_hash: str
    owner: Owner

    @property
    def name(self) -> str:
        """The Secret's name."""
        return secret_name(self.account.ref.name)


def truststore_body(spec: TrustStoreSpec, resource_version: str | None = None) -> dict[str, Any]:
    """A namespace's truststore Secret, as the API takes it (and the manifest shows it)."""
    annotations = spec.owner.annotations(spec.digest)
    metadata = {"name": spec.name, "namespace": spec.namespace}
    return secret_body(metadata, spec.owner, annotations, spec.files, resource_version)


def secret_body(
    metadata: Mapping[str, Any],
    owner: Owner,
    annotations: Mapping[str, str],
    files: Mapping[str, bytes],
    resource_version: str | None = None,
) -> dict[str, Any]:
    """A Secret the hub writes: `metadata` stamped with our labels and `annotations`."""
    stamped = {**metadata, "labels": dict(owner.labels), "annotations": dict(annotations)}
    if resource_version is not None:
        stamped["resourceVersion"] = resource_version
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": stamped,
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode("ascii") for key, value in files.items()},
    }
