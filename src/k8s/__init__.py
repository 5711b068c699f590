"""The Kubernetes API as the hub uses it, in two halves so that an idle hook stays cheap.

- `k8s.policy`: what every module of the pass needs — the `KubeError` family, the hook's
  `HookBudget` and breaker, the `RetryPolicy`, the permissions the hub reviews. Standard
  library only; re-exported here.
- `k8s.gateway`: the client — `KubeGateway` over lightkube — and `k8s.transport`, the
  retrying, budget-bound transport under it. Imported only where a hook first talks to the API
  (the charm's `_gateway`), so a hook that sends no request (a follower's `update-status`)
  never loads lightkube, httpx2 or tenacity.
"""

from k8s.policy import (
    HUB_PERMISSIONS,
    PROVIDER_PERMISSIONS,
    WATCH_PERMISSIONS,
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

__all__ = [
    "HUB_PERMISSIONS",
    "PROVIDER_PERMISSIONS",
    "WATCH_PERMISSIONS",
    "AlreadyExistsError",
    "BreakerOpenError",
    "ConflictError",
    "ForbiddenError",
    "HookBudget",
    "InvalidError",
    "KubeError",
    "NotFoundError",
    "Permission",
    "RetryPolicy",
    "UnavailableError",
]
