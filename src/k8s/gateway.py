"""The Kubernetes gateway: the hub's typed calls to the API, over lightkube.

It turns API objects into the typed views of `core.cluster` and back, and turns every error
into a `KubeError` subclass. Each request goes through the retrying transport
(`k8s.transport`): 429, 5xx and connection errors are retried within the hook's `HookBudget`;
once the budget's breaker is open, every later call of the hook fails at once with the real
cause, so a hook's time no longer grows with the number of calls (or relations) it makes.

The client comes from the standard environment (`KubeConfig.from_env()`): the pod's service
account in a cluster, `KUBECONFIG` elsewhere, so the same code runs in production, the demo
and the tests.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
from lightkube import Client, KubeConfig
from lightkube.config import client_adapter
from lightkube.core.exceptions import ConfigError
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import Namespace, Pod, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from core.cluster import (
    HUB_SECRET_SELECTOR,
    LEGACY_TRUSTSTORE_SECRET,
    SECRET_PREFIX,
    SPARK8T_SELECTOR,
    TRUSTSTORE_SECRET,
    Account,
    AccountRef,
    HubSecrets,
    LiveSecret,
    LiveTrustStore,
    Owner,
    SecretSpec,
    TrustStoreSpec,
    secret_body,
    truststore_body,
)
from core.manifest import (
    JUJU_APP_LABEL,
    PROVIDED_LABEL,
    KubeObject,
    provided_value,
)
from k8s.policy import (
    HUB_PERMISSIONS,
    AlreadyExistsError,
    BreakerOpenError,
    ConflictError,
    ForbiddenError,
    HookBudget,
    InvalidError,
    KubeError,
    NotFoundError,
    Permission,
    RetryPolicy,
    UnavailableError,
)
from k8s.transport import (
    RetryingTransport,
    ThreadConnections,
    deadline_transport,
    describe,
    from_api,
    status_text,
)

logger = logging.getLogger(__name__)

FIELD_MANAGER = "integration-hub"
TRUSTSTORE_NAMES = (TRUSTSTORE_SECRET, LEGACY_TRUSTSTORE_SECRET)
"""The truststore Secret, under its name and the one it had before (being retired)."""
MAX_WRITE_ANSWER = 4 * 1024 * 1024
"""The largest answer to a Secret write read (the Secret itself, at most 1 MiB of data)."""
REQUEST_TIMEOUT = 15.0
"""Seconds one request may take (connect, read, write, pool); a hook's budget clamps it."""
T = TypeVar("T")


def _clients_from_environment(
    policy: RetryPolicy, on_retry: Callable[[str], None], budget: HookBudget
) -> tuple[Client, httpx2.Client]:
    """The lightkube client and the HTTP client the Secret writes use, retrying under `policy`.

    The pod's service account in a cluster, `KUBECONFIG` (or ~/.kube/config) elsewhere. Both
    send through one `RetryingTransport` (the same retries, budget, gate and connections),
    which verifies the server exactly as lightkube would by itself; the HTTP client is the one
    lightkube builds from the same configuration (server, credentials, timeout).
    """
    config = KubeConfig.from_env()
    single = config.get()
    if single is None or single.user is None:
        raise ConfigError("the Kubernetes configuration names no context with a user")
    verify = client_adapter.verify_cluster(single.cluster, single.user, single.abs_file)
    transport = RetryingTransport(
        ThreadConnections(lambda: deadline_transport(verify)), policy, on_retry, budget
    )
    timeout = httpx2.Timeout(REQUEST_TIMEOUT)
    return (
        Client(config, field_manager=FIELD_MANAGER, timeout=timeout, transport=transport),
        client_adapter.Client(
            single, client_adapter.ConnectionParams(timeout=timeout, transport=transport)
        ),
    )


class KubeGateway:
    """Typed calls the hub makes to the Kubernetes API."""

    def __init__(
        self,
        retry: RetryPolicy = RetryPolicy(),
        page_size: int = 500,
        budget: HookBudget | None = None,
    ) -> None:
        """Create a gateway with clients from the standard environment.

        Args:
            retry: the retry policy for transient failures (of every request).
            page_size: items per page of a list call.
            budget: the hook's time budget and breaker (the charm makes one per hook); by
                default none: each request is bounded by `retry` alone.
        """
        self.retries: list[str] = []
        self.budget = budget or HookBudget.unbounded()
        self._client, self._http = _clients_from_environment(retry, self._note_retry, self.budget)
        self._secrets_path = self._http.base_url.raw_path + b"api/v1/namespaces/"
        self._write_headers = httpx2.Headers(
            {**self._http.headers, "Content-Type": "application/json"}
        )
        self._page_size = page_size
        self.calls = 0
        self._calls_lock = threading.Lock()  # writes run in several threads (reconciler)

    def close(self) -> None:
        """Close both clients (and so the transport's connections)."""
        self._http.close()
        self._client.close()

    # -- reads ------------------------------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        """All Spark service accounts (label `managed-by=spark8t`) in all namespaces."""

        def listed() -> list[Account]:
            items = self._client.list(
                ServiceAccount, namespace="*", labels=SPARK8T_SELECTOR, chunk_size=self._page_size
            )
            return [account for item in items if (account := _account(item)) is not None]

        return self._call(listed)

    def list_hub_secrets(self) -> HubSecrets:
        """Every Secret labelled `managed-by=integration-hub`, ours or not, in all namespaces."""

        def listed() -> HubSecrets:
            items = list(
                self._client.list(
                    Secret, namespace="*", labels=HUB_SECRET_SELECTOR, chunk_size=self._page_size
                )
            )
            accounts = [_live_secret(i) for i in items if _is_account_secret(_name(i))]
            return HubSecrets(
                accounts=[secret for secret in accounts if secret is not None],
                truststores=[_live_truststore(i) for i in items if _name(i) in TRUSTSTORE_NAMES],
            )

        return self._call(listed)

    def get_secret(self, namespace: str, name: str) -> LiveSecret | None:
        """One Secret by name, or None if it does not exist (or is not a hub Secret's shape)."""
        try:
            return self._call(
                lambda: _live_secret(self._client.get(Secret, name, namespace=namespace))
            )
        except NotFoundError:
            return None

    # -- writes -----------------------------------------------------------------------------

    def create_secret(self, spec: SecretSpec) -> str:
        """Create the hub Secret; returns its resourceVersion."""
        return self._write_secret("POST", spec.account.ref.namespace, None, _secret(spec))

    def replace_secret(self, spec: SecretSpec, resource_version: str) -> str:
        """Replace the whole hub Secret, if it is still at `resource_version`; its new version."""
        body = _secret(spec, resource_version)
        return self._write_secret("PUT", spec.account.ref.namespace, spec.name, body)

    def create_truststore(self, spec: TrustStoreSpec) -> str:
        """Create a namespace's truststore Secret; returns its resourceVersion."""
        return self._write_secret("POST", spec.namespace, None, truststore_body(spec))

    def replace_truststore(self, spec: TrustStoreSpec, resource_version: str) -> str:
        """Replace a namespace's truststore Secret, if it is still at `resource_version`."""
        body = truststore_body(spec, resource_version)
        return self._write_secret("PUT", spec.namespace, spec.name, body)

    def _write_secret(
        self, method: str, namespace: str, name: str | None, body: Mapping[str, Any]
    ) -> str:
        """Create (POST) or replace (PUT `name`) one Secret; returns its new resourceVersion.

        The hot path of a pass, one per account that changes, so it skips what lightkube adds
        to the HTTP client under it: typed models both ways and three URL parses per request
        (docs/benchmark-latency.md). Same transport, so the same retries, budget and gate.
        """
        path = quote(namespace, safe="") + "/secrets"
        if name is not None:
            path += "/" + quote(name, safe="")
        http = self._http
        request = httpx2.Request(
            method,
            http.base_url.copy_with(
                raw_path=self._secrets_path + f"{path}?fieldManager={FIELD_MANAGER}".encode()
            ),
            content=json.dumps(body, separators=(",", ":")).encode(),
            headers=self._write_headers,
            extensions={"timeout": http.timeout.as_dict()},
        )

        def send() -> str:
            response = http.send(request)
            response.raise_for_status()  # an error answer: translated by `_call`
            return _written_version(response.content)  # anything else: not written

        return self._call(send)

    def delete_secret(self, ref: AccountRef, name: str) -> None:
        """Delete a Secret; an already-deleted Secret is not an error."""
        try:
            self._call(lambda: self._client.delete(Secret, name, namespace=ref.namespace))
        except NotFoundError:
            pass

    # -- access -----------------------------------------------------------------------------

    def missing_permissions(
        self, permissions: Iterable[Permission] = HUB_PERMISSIONS
    ) -> list[Permission]:
        """The permissions the hub's identity lacks, by SelfSubjectAccessReview."""
        return [p for p in permissions if not self._allowed(p)]

    def _allowed(self, permission: Permission) -> bool:
        review = SelfSubjectAccessReview(
            spec=SelfSubjectAccessReviewSpec(
                resourceAttributes=ResourceAttributes(
                    verb=permission.verb, resource=permission.resource, group=permission.group
                )
            )
        )
        answer = self._call(lambda: self._client.create(review))
        return bool(answer.status and answer.status.allowed)

    # -- the retry loop ---------------------------------------------------------------------

    def _note_retry(self, reason: str) -> None:
        self.retries.append(reason)
        logger.info("retrying Kubernetes request after %s", reason)

    def _call(self, request: Callable[[], T]) -> T:
        """Run one API call (its requests are retried by the transport), translating errors.

        With the hook's breaker open, it fails at once (no request, not counted). Error
        answers reach here as clean `Status` bodies (the transport rebuilds them); a success
        answer that cannot be read as what was asked for (a proxy's login page, a list whose
        `items` is not a list, a field of the wrong type...) is an `UnavailableError` like a
        dropped connection: `request` includes the conversion of the answer for that reason.
        """
        if self.budget.cause is not None:
            raise UnavailableError(0, self.budget.cause)
        with self._calls_lock:
            self.calls += 1
        try:
            return request()
        except httpx2.HTTPStatusError as error:  # lightkube's `ApiError`, or any error answer
            translated = _translate(error)
            if isinstance(translated, UnavailableError) and self.budget.cause is not None:
                translated = UnavailableError(translated.code, self.budget.cause)
            raise translated from None
        except (httpx2.TransportError, BreakerOpenError) as error:
            raise UnavailableError(0, self.budget.cause or describe(error)) from None
        except KubeError:
            raise
        except Exception as error:  # a success answer the API itself would never send
            reason = f"unreadable answer from the API ({type(error).__name__}): a proxy?"
            logger.warning("Kubernetes answer not understood: %s", type(error).__name__)
            raise UnavailableError(0, reason) from None

    # -- Spark accounts (spark-service-account provider) --------------------------------------
    # The provider (`src/provider.py`) creates, adopts and releases the Spark service accounts
    # other charms ask for. Objects are exchanged as API dicts wrapped in `core.manifest`'s
    # `KubeObject`, so nothing outside this module sees a lightkube type.

    def get_object(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        """One object of a provider kind (`_PROVIDER_KINDS`), or None if it does not exist.

        `namespace` is ignored for the cluster-scoped Namespace kind.
        """
        resource = _PROVIDER_KINDS[kind]
        try:
            if kind == "Namespace":
                item = self._call(lambda: self._client.get(resource, name))
            else:
                item = self._call(lambda: self._client.get(resource, name, namespace=namespace))
        except NotFoundError:
            return None
        return _kube_object(item, kind)

    def create_object(self, body: Mapping[str, Any]) -> KubeObject:
        """Create an object from its API dict; raises `AlreadyExistsError` if it exists."""
        kind = str(body["kind"])
        resource = _PROVIDER_KINDS[kind].from_dict(dict(body))  # type: ignore[attr-defined]
        created = self._call(lambda: self._client.create(resource))
        return _kube_object(created, kind)

    def delete_object(self, kind: str, namespace: str, name: str) -> bool:
        """Delete an object; returns False when it was already gone."""
        resource = _PROVIDER_KINDS[kind]
        try:
            if kind == "Namespace":
                self._call(lambda: self._client.delete(resource, name))
            else:
                self._call(lambda: self._client.delete(resource, name, namespace=namespace))
        except NotFoundError:
            return False
        return True

    def list_provided_accounts(self, owner: Owner) -> list[KubeObject]:
        """The ServiceAccounts labelled as provided by `owner`'s app (all namespaces).

        The label names only the application; callers check the `created-by` annotation
        (model UUID and app) before acting on an account.
        """
        labels: dict[str, Any] = {PROVIDED_LABEL: provided_value(owner)}
        items = self._call(
            lambda: list(
                self._client.list(
                    ServiceAccount, namespace="*", labels=labels, chunk_size=self._page_size
                )
            )
        )
        return [_kube_object(item, "ServiceAccount") for item in items]

    def runs_pods(self, namespace: str, app: str) -> bool:
        """Whether the Juju application `app` has a pod in `namespace` (1 list, 1 item at most).

        Juju labels every pod of an application `app.kubernetes.io/name=<application>`.
        """
        labels: dict[str, Any] = {JUJU_APP_LABEL: app}
        items = self._call(
            lambda: list(
                itertools.islice(
                    self._client.list(Pod, namespace=namespace, labels=labels, chunk_size=1), 1
                )
            )
        )
        return bool(items)

    def ensure_namespace(self, name: str, annotations: Mapping[str, str]) -> bool:
        """Create the namespace `name` unless it exists; returns whether it was created."""
        if self.get_object("Namespace", "", name) is not None:
            return False
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "annotations": dict(annotations)},
        }
        try:
            self.create_object(body)
        except AlreadyExistsError:
            return False
        return True


def _translate(error: httpx2.HTTPStatusError) -> KubeError:
    """The `KubeError` for an error answer (after the transport's retries).

    lightkube's `ApiError` and the Secret writes' `HTTPStatusError` alike: read from the answer
    itself (`status_text`), so a proxy's HTML page is an error like any other.
    """
    code = error.response.status_code
    reason, message = status_text(error.response)
    if code == 404:
        return NotFoundError(code, message or reason)
    if code == 409:
        return (
            AlreadyExistsError(code, reason)
            if reason == "AlreadyExists"
            else ConflictError(code, reason)
        )
    if code == 403:
        return ForbiddenError(code, message or reason)
    if code == 429 or code >= 500:
        return UnavailableError(code, from_api(code, reason))
    if code in (400, 422):
        return InvalidError(code, reason or "Invalid")
    return KubeError(code, message or reason)


def _written_version(content: bytes) -> str:
    """The resourceVersion of a written object as answered.

    Raises:
        ValueError: the answer is not the object the API returns for a write (a proxy's page,
            an empty body): the write is not known to have happened.
    """
    answer = json.loads(content) if len(content) <= MAX_WRITE_ANSWER else None
    metadata = answer.get("metadata") if isinstance(answer, dict) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    if not isinstance(version, str) or not version:
        raise ValueError("no resourceVersion in the answer to a write")
    return version


def _name(item: Any) -> str:
    return item.metadata.name or ""


def _is_account_secret(name: str) -> bool:
    """Whether `name` is an account's hub Secret (`integrator-hub-conf-<name>`, not the CA's)."""
    return name.startswith(SECRET_PREFIX) and name != TRUSTSTORE_SECRET


def _ref(namespace: object, name: object) -> AccountRef | None:
    """The account `namespace:name` if both are valid names (the API never sends others)."""
    try:
        return AccountRef.parse(f"{namespace}:{name}")
    except ValueError:
        logger.warning("skipped an object with an invalid name in an API answer")
        return None


def _account(item: Any) -> Account | None:
    meta = item.metadata
    ref = _ref(meta.namespace, meta.name)
    if ref is None:
        return None
    return Account(ref, str(meta.uid or ""), _text_map(meta.labels))


def _text_map(value: object) -> dict[str, str]:
    """Labels or annotations as answered, if they are a mapping of text (else none)."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _decode(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _live_secret(item: Any) -> LiveSecret | None:
    meta = item.metadata
    ref = _ref(meta.namespace, str(meta.name or "").removeprefix(SECRET_PREFIX))
    if ref is None:
        return None
    data = item.data if isinstance(item.data, Mapping) else {}
    return LiveSecret(
        ref=ref,
        resource_version=str(meta.resourceVersion or ""),
        labels=_text_map(meta.labels),
        annotations=_text_map(meta.annotations),
        data={str(key): _decode(value) for key, value in data.items()},
    )


def _live_truststore(item: Any) -> LiveTrustStore:
    meta = item.metadata
    files = {}
    for key, value in (item.data if isinstance(item.data, Mapping) else {}).items():
        try:
            files[str(key)] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            files[str(key)] = b""  # never equal to a desired file: rewritten
    return LiveTrustStore(
        namespace=str(meta.namespace or ""),
        name=str(meta.name or ""),
        resource_version=str(meta.resourceVersion or ""),
        labels=_text_map(meta.labels),
        annotations=_text_map(meta.annotations),
        files=files,
    )


def _secret(spec: SecretSpec, resource_version: str | None = None) -> dict[str, Any]:
    """An account's hub Secret, owned by its ServiceAccount, as the API takes it."""
    ref = spec.account.ref
    owner_reference = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "name": ref.name,
        "uid": spec.account.uid,
    }
    metadata = {
        "name": spec.name,
        "namespace": ref.namespace,
        "ownerReferences": [owner_reference],
    }
    files = {key: value.encode("utf-8") for key, value in spec.data.items()}
    annotations = spec.owner.annotations(spec.data_hash)
    return secret_body(metadata, spec.owner, annotations, files, resource_version)


# -- Spark accounts (spark-service-account provider) ------------------------------------------


_PROVIDER_KINDS: dict[str, Any] = {
    "Namespace": Namespace,
    "ServiceAccount": ServiceAccount,
    "Role": Role,
    "RoleBinding": RoleBinding,
    "Secret": Secret,
}
"""The kinds the provider reads and writes, by `kind`."""


def _kube_object(item: Any, kind: str) -> KubeObject:
    body = item.to_dict()
    body.setdefault("kind", kind)
    body.setdefault("apiVersion", _PROVIDER_KINDS[kind]._api_info.resource.api_version)
    return KubeObject.of(body)
