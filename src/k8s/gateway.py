"""The Kubernetes gateway: the only module that imports lightkube (and httpx2, tenacity).

It turns API objects into the typed views of `core.cluster` and back, and owns the retry policy:
429 (honouring `Retry-After`), 5xx and connection errors are retried with exponential backoff
under a bound on attempts and total time, so a hook never hangs; any other 4xx is raised at once
as a `KubeError` subclass.

Every request of one hook shares one `HookBudget` (`k8s.policy`): a deadline and a breaker.
Retries stop when the next wait (or a `Retry-After`) would overrun what is left of the budget,
and each request's timeout is clamped to it, so a hook ends within its budget however slow the
API; once the API is judged unavailable (retries exhausted, or the budget spent) the breaker
opens and every later request of the hook fails at once with the real cause, so a hook's time
no longer grows with the number of calls (or relations) it makes.

The client comes from the standard environment (`KubeConfig.from_env()`): the pod's service
account in a cluster, `KUBECONFIG` elsewhere, so the same code runs in production, the demo
and the tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx2
from lightkube import Client, KubeConfig
from lightkube.config.client_adapter import verify_cluster
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import Namespace, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
)
from tenacity.stop import stop_base

from core.cluster import (
    HUB_SECRET_SELECTOR,
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
)
from core.manifest import (
    PROVIDED_LABEL,
    AccountNames,
    AccountObjects,
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

logger = logging.getLogger(__name__)

FIELD_MANAGER = "integration-hub"
REQUEST_TIMEOUT = 15.0
"""Seconds one request may take (connect, read, write, pool); a hook's budget clamps it."""
MINIMUM_REQUEST_TIMEOUT = 0.05
"""The shortest timeout a nearly spent budget gives a request (it may still be answered)."""
T = TypeVar("T")


def _describe(error: BaseException) -> str:
    if isinstance(error, BreakerOpenError):
        return str(error)
    if isinstance(error, ApiError):
        return f"{error.status.code} from API ({error.status.reason})"
    if isinstance(error, _TransientResponseError):
        return f"{error.response.status_code} from API ({error.reason})"
    return f"connection error ({type(error).__name__})"


class _TransientResponseError(Exception):
    """A 429 or 5xx answer, raised inside the retry loop so that tenacity retries it."""

    def __init__(self, response: httpx2.Response) -> None:
        super().__init__(response.status_code)
        self.response = response
        try:
            self.reason = str(json.loads(response.content).get("reason", ""))
        except (ValueError, AttributeError):
            self.reason = response.reason_phrase

    @property
    def retry_after(self) -> float | None:
        header = self.response.headers.get("Retry-After", "")
        return float(header) if header.isdigit() else None


class _OutOfBudget(stop_base):
    """Stop when the next wait (a `Retry-After` as sent) would overrun the hook's budget."""

    def __init__(self, budget: HookBudget) -> None:
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = error.retry_after if isinstance(error, _TransientResponseError) else None
        needed = hinted if hinted is not None else retry_state.upcoming_sleep
        return needed >= self._budget.remaining()


class _SharedGate:
    """The pace shared by every thread of one client: a `Retry-After` pause and an in-flight cap.

    A 429 closes the gate until its `Retry-After` has passed (every thread waits) and halves the
    number of requests let in at once (once per pause, however many 429s that burst caused);
    each success raises the cap again by `1/(PROBE * cap)`, up to `ceiling` (additive
    increase, multiplicative decrease), so one more request in flight is tried only after
    `PROBE` times the cap of successes. Concurrent writers thus settle just under the server's
    limit instead of bursting into it again each time the pause ends.
    """

    PROBE = 32

    def __init__(self, budget: HookBudget, ceiling: int = 64) -> None:
        self._budget = budget  # a Retry-After pause is spent from (and bounded by) the budget
        self._ceiling = float(ceiling)
        self._cap = float(ceiling)
        self._in_flight = 0
        self._opens = 0.0  # the clock's time before which no request is sent
        self._changed = threading.Condition()

    def enter(self) -> None:
        """Wait until the gate is open and the cap allows one more request in flight.

        Raises:
            BreakerOpenError: the pause would outlast the hook's budget (nothing is waited).
        """
        with self._changed:
            while True:
                paused = self._opens - self._budget.clock()
                if paused > 0:
                    self._budget.check(needing=paused)
                    self._changed.release()
                    try:
                        self._budget.pause(paused)
                    finally:
                        self._changed.acquire()
                elif self._in_flight < int(self._cap):
                    self._in_flight += 1
                    return
                else:
                    self._changed.wait()

    def leave(self, limited: bool, retry_after: float | None) -> None:
        """Record how the request ended: `limited` when it was answered 429."""
        with self._changed:
            self._in_flight -= 1
            now = self._budget.clock()
            if not limited:
                self._cap = min(self._ceiling, self._cap + 1 / (self.PROBE * self._cap))
            elif now >= self._opens:  # the first 429 of this pause
                self._cap = max(1.0, self._cap / 2)
                if retry_after:
                    self._opens = now + retry_after
            self._changed.notify_all()


class RetryingTransport(httpx2.BaseTransport):
    """Sends each HTTP request under the retry policy: every page of a list on its own.

    429 (honouring `Retry-After`, capped at `RetryPolicy.maximum`), 5xx and connection errors
    are retried with exponential backoff, within `attempts` and `deadline`; the last answer
    goes back to lightkube, which raises it as an `ApiError`. Other answers are returned at
    once. Retrying per request (not per call) means a list of many pages resumes at the page
    that failed instead of starting again.

    The transport is shared by every thread of the client. A 429's `Retry-After` closes one
    shared gate (`_SharedGate`) until that time: every request but a watch, of whichever
    thread, waits at the gate before it is sent, so concurrent writers back off together
    instead of each learning of the limit by its own 429.
    """

    def __init__(
        self,
        inner: httpx2.BaseTransport,
        policy: RetryPolicy,
        on_retry: Callable[[str], None],
        budget: HookBudget | None = None,
    ) -> None:
        """Wrap `inner`; `on_retry` is told why each retry happens; `budget` bounds them all."""
        self._inner = inner
        self._policy = policy
        self._on_retry = on_retry
        self.budget = budget or HookBudget.unbounded()
        self._backoff = wait_exponential(multiplier=policy.initial, max=policy.maximum)
        self._gate = _SharedGate(self.budget)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request`, retrying transient failures within the hook's budget.

        Raises:
            BreakerOpenError: the breaker is (or has just been) opened; nothing more is sent.
        """
        self.budget.check()
        retrying = Retrying(
            retry=retry_if_exception_type((_TransientResponseError, httpx2.TransportError)),
            wait=self._wait,
            stop=stop_any(
                stop_after_attempt(self._policy.attempts),
                stop_after_delay(self._policy.deadline),
                _OutOfBudget(self.budget),
            ),
            before_sleep=self._before_sleep,
            sleep=self.budget.pause,
            reraise=True,
        )
        try:
            return retrying(self._send, request)
        except _TransientResponseError as last:
            self.budget.trip(_unavailable(last))
            return last.response
        except httpx2.TransportError as error:
            if self.budget.remaining() <= 0:  # timed out by the budget's clamp, not the API
                self.budget.check()
            self.budget.trip(f"API unreachable ({type(error).__name__})")
            raise

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()

    def _send(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.params.get("watch") in ("true", "1"):  # a stream: outside the gate
            return self._checked(self._inner.handle_request(request))
        self._gate.enter()
        self._within_budget(request)
        limited, hinted = False, None
        try:
            return self._checked(self._inner.handle_request(request))
        except _TransientResponseError as error:
            limited = error.response.status_code == 429
            hinted = (
                None if error.retry_after is None else min(error.retry_after, self._policy.maximum)
            )
            raise
        finally:
            self._gate.leave(limited, hinted)

    def _within_budget(self, request: httpx2.Request) -> None:
        """Clamp the request's timeouts to what is left of the hook's budget.

        So a request sent late in the budget cannot hold the hook a whole `REQUEST_TIMEOUT`
        past it: a pass overruns its budget by at most `MINIMUM_REQUEST_TIMEOUT` per request
        in flight, all at once.
        """
        remaining = self.budget.remaining()
        if math.isinf(remaining):
            return
        limit = max(remaining, MINIMUM_REQUEST_TIMEOUT)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        request.extensions["timeout"] = {
            kind: limit if seconds is None else min(seconds, limit)
            for kind, seconds in timeouts.items()
        }

    @staticmethod
    def _checked(response: httpx2.Response) -> httpx2.Response:
        if response.status_code == 429 or response.status_code >= 500:
            response.read()
            response.close()
            raise _TransientResponseError(response)
        return response

    def _wait(self, state: RetryCallState) -> float:
        """The backoff before the next try; a hinted 429 waits at the gate instead."""
        error = state.outcome.exception() if state.outcome else None
        hinted = error.retry_after if isinstance(error, _TransientResponseError) else None
        return 0.0 if hinted is not None else self._backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if error is not None:
            self._on_retry(_describe(error))


def _unavailable(last: _TransientResponseError) -> str:
    """The cause shown when retries of a 429 or 5xx answer are over."""
    if last.response.status_code == 429:
        hinted = last.retry_after
        return "API rate-limited" + (f", retry after {hinted:g} s" if hinted is not None else "")
    return f"API unavailable ({_describe(last)})"


def _client_from_environment(
    policy: RetryPolicy, on_retry: Callable[[str], None], budget: HookBudget
) -> Client:
    """A lightkube client from the standard environment, retrying under `policy`.

    The pod's service account in a cluster, `KUBECONFIG` (or ~/.kube/config) elsewhere; the
    transport verifies the server exactly as lightkube would by itself.
    """
    config = KubeConfig.from_env()
    single = config.get()
    if single is None or single.user is None:
        raise ConfigError("the Kubernetes configuration names no context with a user")
    verify = verify_cluster(single.cluster, single.user, single.abs_file)
    transport = RetryingTransport(httpx2.HTTPTransport(verify=verify), policy, on_retry, budget)
    return Client(
        config,
        field_manager=FIELD_MANAGER,
        timeout=httpx2.Timeout(REQUEST_TIMEOUT),
        transport=transport,
    )


class KubeGateway:
    """Typed calls the hub makes to the Kubernetes API."""

    def __init__(
        self,
        client: Any | None = None,
        retry: RetryPolicy = RetryPolicy(),
        page_size: int = 500,
        budget: HookBudget | None = None,
    ) -> None:
        """Create a gateway.

        Args:
            client: a lightkube `Client`; by default one from the standard environment, whose
                transport retries every request under `retry` and `budget`.
            retry: the retry policy for transient failures.
            page_size: items per page of a list call.
            budget: the hook's time budget and breaker (the charm makes one per hook); by
                default none: each request is bounded by `retry` alone.
        """
        self.retries: list[str] = []
        self.budget = budget or HookBudget.unbounded()
        self._client = client or _client_from_environment(retry, self._note_retry, self.budget)
        self._page_size = page_size
        self.calls = 0
        self._calls_lock = threading.Lock()  # writes run in several threads (reconciler)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    # -- reads ------------------------------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        """All Spark service accounts (label `managed-by=spark8t`) in all namespaces."""
        items = self._call(
            lambda: list(
                self._client.list(
                    ServiceAccount,
                    namespace="*",
                    labels=SPARK8T_SELECTOR,
                    chunk_size=self._page_size,
                )
            )
        )
        return [_account(item) for item in items]

    def list_hub_secrets(self) -> HubSecrets:
        """Every Secret labelled `managed-by=integration-hub`, ours or not, in all namespaces."""
        items = self._call(
            lambda: list(
                self._client.list(
                    Secret, namespace="*", labels=HUB_SECRET_SELECTOR, chunk_size=self._page_size
                )
            )
        )
        return HubSecrets(
            accounts=[_live_secret(i) for i in items if _name(i).startswith(SECRET_PREFIX)],
            truststores=[_live_truststore(i) for i in items if _name(i) == TRUSTSTORE_SECRET],
        )

    def get_secret(self, namespace: str, name: str) -> LiveSecret | None:
        """One Secret by name, or None if it does not exist."""
        try:
            item = self._call(lambda: self._client.get(Secret, name, namespace=namespace))
        except NotFoundError:
            return None
        return _live_secret(item)

    # -- writes -----------------------------------------------------------------------------

    def create_secret(self, spec: SecretSpec) -> str:
        """Create the hub Secret; returns its resourceVersion."""
        created = self._call(lambda: self._client.create(_secret(spec)))
        return _version(created)

    def replace_secret(self, spec: SecretSpec, resource_version: str) -> str:
        """Replace the whole hub Secret, if it is still at `resource_version`."""
        replaced = self._call(lambda: self._client.replace(_secret(spec, resource_version)))
        return _version(replaced)

    def create_truststore(self, spec: TrustStoreSpec) -> str:
        """Create a namespace's truststore Secret; returns its resourceVersion."""
        return _version(self._call(lambda: self._client.create(_truststore(spec))))

    def replace_truststore(self, spec: TrustStoreSpec, resource_version: str) -> str:
        """Replace a namespace's truststore Secret, if it is still at `resource_version`."""
        replaced = self._call(lambda: self._client.replace(_truststore(spec, resource_version)))
        return _version(replaced)

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

        With the hook's breaker open, it fails at once (no request, not counted).
        """
        if self.budget.cause is not None:
            raise UnavailableError(0, self.budget.cause)
        with self._calls_lock:
            self.calls += 1
        try:
            return request()
        except ApiError as error:
            translated = _translate(error)
            if isinstance(translated, UnavailableError) and self.budget.cause is not None:
                translated = UnavailableError(translated.code, self.budget.cause)
            raise translated from None
        except (httpx2.TransportError, BreakerOpenError) as error:
            raise UnavailableError(0, self.budget.cause or _describe(error)) from None

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

    def get_account_objects(self, ref: AccountRef, *, hub_secret: bool = True) -> AccountObjects:
        """Every object of the account `ref` as it is now (4 GETs, 5 with `hub_secret`)."""
        names = AccountNames(ref)
        wanted = names.keys() if hub_secret else names.keys()[:-1]
        found = [self.get_object(kind, ref.namespace, name) for kind, name in wanted]
        return AccountObjects(ref, *found)

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


def _translate(error: ApiError) -> KubeError:
    code = error.status.code or 0
    reason = error.status.reason or ""
    if code == 404:
        return NotFoundError(code, error.status.message or reason)
    if code == 409:
        return (
            AlreadyExistsError(code, reason)
            if reason == "AlreadyExists"
            else ConflictError(code, reason)
        )
    if code == 403:
        return ForbiddenError(code, error.status.message or reason)
    if code == 429 or code >= 500:
        return UnavailableError(code, _describe(error))
    if code in (400, 422):
        return InvalidError(code, reason or "Invalid")
    return KubeError(code, error.status.message or reason)


def _name(item: Any) -> str:
    return item.metadata.name or ""


def _version(item: Any) -> str:
    return item.metadata.resourceVersion or ""


def _account(item: Any) -> Account:
    meta = item.metadata
    return Account(AccountRef(meta.namespace, meta.name), meta.uid or "", dict(meta.labels or {}))


def _decode(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _live_secret(item: Any) -> LiveSecret:
    meta = item.metadata
    return LiveSecret(
        ref=AccountRef(meta.namespace, meta.name.removeprefix(SECRET_PREFIX)),
        resource_version=meta.resourceVersion or "",
        labels=dict(meta.labels or {}),
        annotations=dict(meta.annotations or {}),
        data={key: _decode(value) for key, value in (item.data or {}).items()},
    )


def _live_truststore(item: Any) -> LiveTrustStore:
    meta = item.metadata
    files = {}
    for key, value in (item.data or {}).items():
        try:
            files[key] = base64.b64decode(value, validate=True)
        except binascii.Error:
            files[key] = b""
    return LiveTrustStore(
        namespace=meta.namespace,
        resource_version=meta.resourceVersion or "",
        labels=dict(meta.labels or {}),
        annotations=dict(meta.annotations or {}),
        files=files,
    )


def _truststore(spec: TrustStoreSpec, resource_version: str | None = None) -> Secret:
    return Secret(
        metadata=ObjectMeta(
            name=spec.name,
            namespace=spec.namespace,
            labels=spec.owner.labels,
            annotations=spec.owner.annotations(spec.digest),
            resourceVersion=resource_version,
        ),
        type="Opaque",
        data={key: base64.b64encode(value).decode("ascii") for key, value in spec.files.items()},
    )


def _secret(spec: SecretSpec, resource_version: str | None = None) -> Secret:
    account = spec.account
    return Secret(
        metadata=ObjectMeta(
            name=spec.name,
            namespace=account.ref.namespace,
            labels=spec.owner.labels,
            annotations=spec.owner.annotations(spec.data_hash),
            resourceVersion=resource_version,
            ownerReferences=[
                OwnerReference(
                    apiVersion="v1", kind="ServiceAccount", name=account.ref.name, uid=account.uid
                )
            ],
        ),
        type="Opaque",
        data={
            key: base64.b64encode(value.encode("utf-8")).decode("ascii")
            for key, value in spec.data.items()
        },
    )


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
