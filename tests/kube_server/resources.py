"""The resource types the fake Kubernetes API server knows about.

Each :class:`ResourceType` ties a kind to its REST path (group, version, plural), its scope and
the naming rule the real API server applies to its objects.
"""

from __future__ import annotations

from dataclasses import dataclass

RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class ResourceType:
    """One Kubernetes resource type served by the fake server.

    Attributes:
        kind: the object kind, e.g. ``Secret``.
        plural: the REST resource name, e.g. ``secrets``.
        group: the API group, ``""`` for the core group.
        version: the API version within the group.
        namespaced: whether objects live in a namespace.
        name_rule: ``subdomain``, ``label`` or ``path``: how ``metadata.name`` is validated.
        top_level: the top-level fields a strategic merge patch keeps (others are dropped).
    """

    kind: str
    plural: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    name_rule: str = "subdomain"
    top_level: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` of objects of this type, e.g. ``rbac.authorization.k8s.io/v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The group-qualified resource name used in error messages, e.g. ``roles.rbac...``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def base_path(self) -> str:
        """The URL prefix of the group and version, e.g. ``/api/v1``."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


_COMMON = frozenset({"apiVersion", "kind", "metadata"})


def _fields(*names: str) -> frozenset[str]:
    return _COMMON | frozenset(names)


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "Namespace",
        "namespaces",
        namespaced=False,
        name_rule="label",
        top_level=_fields("spec", "status"),
    ),
    ResourceType(
        "ServiceAccount",
        "serviceaccounts",
        top_level=_fields("secrets", "imagePullSecrets", "automountServiceAccountToken"),
    ),
    ResourceType(
        "Secret", "secrets", top_level=_fields("data", "stringData", "type", "immutable")
    ),
    ResourceType("ConfigMap", "configmaps", top_level=_fields("data", "binaryData", "immutable")),
    ResourceType("Pod", "pods", top_level=_fields("spec", "status")),
    ResourceType("Service", "services", name_rule="label", top_level=_fields("spec", "status")),
    ResourceType("Role", "roles", RBAC, name_rule="path", top_level=_fields("rules")),
    ResourceType(
        "RoleBinding",
        "rolebindings",
        RBAC,
        name_rule="path",
        top_level=_fields("roleRef", "subjects"),
    ),
    ResourceType(
        "ClusterRole",
        "clusterroles",
        RBAC,
        namespaced=False,
        name_rule="path",
        top_level=_fields("rules", "aggregationRule"),
    ),
    ResourceType(
        "ClusterRoleBinding",
        "clusterrolebindings",
        RBAC,
        namespaced=False,
        name_rule="path",
        top_level=_fields("roleRef", "subjects"),
    ),
)

_BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCE_TYPES}
_BY_NAME = {}
for _rt in RESOURCE_TYPES:
    _BY_NAME[_rt.kind.lower()] = _rt
    _BY_NAME[_rt.plural] = _rt


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    """Find the resource type served at a group, version and plural.

    Args:
        group: the API group (``""`` for core).
        version: the API version.
        plural: the REST resource name.

    Returns:
        The resource type, or None when the server does not serve it.
    """
    return _BY_PATH.get((group, version, plural))


def by_kind(kind: str) -> ResourceType:
    """Find a resource type by kind or plural, case-insensitively.

    Args:
        kind: a kind such as ``Secret`` or a plural such as ``secrets``.

    Returns:
        The resource type.

    Raises:
        KeyError: when the kind is unknown.
    """
    try:
        return _BY_NAME[kind.lower()]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}") from None


def groups() -> dict[str, list[ResourceType]]:
    """Group the served resource types by ``apiVersion`` (for discovery documents).

    Returns:
        A mapping of ``apiVersion`` to its resource types.
    """
    result: dict[str, list[ResourceType]] = {}
    for rt in RESOURCE_TYPES:
        result.setdefault(rt.api_version, []).append(rt)
    return result
