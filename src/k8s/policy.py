"""What every hook needs of the Kubernetes API: its errors, budget, retry policy, permissions.

Standard library only, so importing it (as every module of the pass does) costs a hook
nothing; the client itself is `k8s.gateway`, imported when a hook first talks to the API.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic, sleep

logger = logging.getLogger(__name__)


class KubeError(Exception):
    """An API call that failed for good; `reason` is safe to show (it holds no secret data)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class NotFoundError(KubeError):
    """404: the object (or its namespace) does not exist."""


class AlreadyExistsError(KubeError):
    """409 on create: an object of that name exists."""


class ConflictError(KubeError):
    """409 on replace: our resourceVersion is stale."""


class ForbiddenError(KubeError):
    """403: the hub lacks a permission."""


class InvalidError(KubeError):
    """400 or 422: the API server refuses the object itself; retrying the same write is futile."""


class UnavailableError(KubeError):
    """Retries exhausted on 429, 5xx or connection errors, or the hook's budget spent."""


class HookBudget:
    """One hook's time budget and breaker, shared by every request the hook makes.

    `cause` is None while the API is usable; once set (the breaker is open) every later
    request fails at once with it. The clock and sleep are injectable so tests count
    requests instead of waiting.
    """

    def __init__(
        self,
        seconds: float = 60.0,
        clock: Callable[[], float] | None = None,
        pause: Callable[[float], None] | None = None,
        *,
        breaker: bool = True,
    ) -> None:
        """Start the budget now.

        Args:
            seconds: the hook's budget, from now.
            clock: the clock (default `time.monotonic`).
            pause: how retries wait (default `time.sleep`).
            breaker: whether retries exhausted open the breaker for the rest of the hook.
        """
        self.seconds = seconds
        self.breaker = breaker
        self.clock = clock or monotonic
        self.pause = pause or sleep
        self.started = self.clock()
        self.cause: str | None = None

    @classmethod
    def unbounded(cls) -> HookBudget:
        """No budget and no breaker: each request is bounded by the `RetryPolicy` alone.

        For a gateway that outlives one hook (tests, the bench, the demo).
        """
        return cls(math.inf, breaker=False)

    def remaining(self) -> float:
        """Seconds left before the hook's budget is spent (never negative)."""
        return max(0.0, self.seconds - (self.clock() - self.started))

    def trip(self, cause: str) -> None:
        """Open the breaker: every later request fails with `cause` (the first cause stays)."""
        if self.breaker and self.cause is None:
            self.cause = cause
            logger.warning("Kubernetes API judged unavailable for this hook: %s", cause)

    def check(self, needing: float = 0.0) -> None:
        """Open the breaker if the budget is spent (or short of `needing`); raise if it is open.

        Args:
            needing: seconds the caller is about to wait before its next request.

        Raises:
            BreakerOpenError: the cause, for the gateway to turn into an `UnavailableError`.
        """
        if self.cause is None and self.remaining() <= needing:
            self.trip(f"hook time budget spent ({self.seconds:g} s); the next pass continues")
        if self.cause is not None:
            raise BreakerOpenError(self.cause)


class BreakerOpenError(Exception):
    """A request not sent because this hook's breaker is open; the message is the cause.

    Raised inside the transport, under httpx and lightkube, which let it through; the gateway
    turns it into an `UnavailableError`.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        attempts: at most this many tries per call.
        deadline: give up after this many seconds per call, whatever `attempts` says.
        initial: the first backoff in seconds (doubled each try).
        maximum: the largest backoff (and the cap on an honoured `Retry-After`).
    """

    attempts: int = 5
    deadline: float = 30.0
    initial: float = 0.5
    maximum: float = 8.0


@dataclass(frozen=True)
class Permission:
    """One verb on one resource, cluster-wide, that the hub uses."""

    verb: str
    resource: str
    group: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}"


HUB_PERMISSIONS: tuple[Permission, ...] = (
    Permission("list", "serviceaccounts"),
    Permission("list", "secrets"),
    Permission("get", "secrets"),
    Permission("create", "secrets"),
    Permission("update", "secrets"),
    Permission("delete", "secrets"),
)
"""What a pass needs: without any of these the hub is blocked."""

WATCH_PERMISSIONS: tuple[Permission, ...] = (
    Permission("watch", "serviceaccounts"),
    Permission("watch", "secrets"),
)
"""What only the watcher needs: without them passes still work, run at update-status only."""

PROVIDER_PERMISSIONS: tuple[Permission, ...] = (
    Permission("get", "namespaces"),
    Permission("list", "pods"),
    Permission("create", "namespaces"),
    Permission("list", "serviceaccounts"),
    Permission("get", "serviceaccounts"),
    Permission("create", "serviceaccounts"),
    Permission("delete", "serviceaccounts"),
    Permission("get", "roles", "rbac.authorization.k8s.io"),
    Permission("create", "roles", "rbac.authorization.k8s.io"),
    Permission("delete", "roles", "rbac.authorization.k8s.io"),
    Permission("get", "rolebindings", "rbac.authorization.k8s.io"),
    Permission("create", "rolebindings", "rbac.authorization.k8s.io"),
    Permission("delete", "rolebindings", "rbac.authorization.k8s.io"),
    Permission("get", "secrets"),
    Permission("create", "secrets"),
    Permission("delete", "secrets"),
)
"""What the provider needs on top of `HUB_PERMISSIONS` (check with `missing_permissions`)."""
