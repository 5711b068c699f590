"""URL routing of the fake API server, and its discovery documents.

:func:`route` turns a method and path into a :class:`~tests.kube_server.operations.Call` (or the
name of a special endpoint), with the 404 and 405 answers of a real server for the rest.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from tests.kube_server import errors, resources
from tests.kube_server.operations import Call

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SPECIAL = ("/version", "/api", "/apis", "/healthz", "/livez", "/readyz")
VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_VERBS = {
    ("GET", True): "get",
    ("GET", False): "list",
    ("POST", False): "create",
    ("PUT", True): "update",
    ("PATCH", True): "patch",
    ("DELETE", True): "delete",
    ("DELETE", False): "deletecollection",
}


def _not_found() -> errors.StatusError:
    return errors.generic(404)


def _not_allowed() -> errors.StatusError:
    return errors.generic(405)


def _split_prefix(parts: list[str]) -> tuple[str, str, list[str]]:
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    raise _not_found()


def _split_rest(rest: list[str]) -> tuple[str | None, str, str | None]:
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 2:
        raise _not_found()  # subresources (status, scale, exec...) are not served
    return namespace, rest[0], rest[1] if len(rest) == 2 else None


def route(method: str, path: str, query: dict[str, str]) -> Call | str:
    """Route a request.

    Args:
        method: the HTTP method.
        path: the URL path, without query string or trailing slash.
        query: the query parameters.

    Returns:
        A Call for resource requests, else a special endpoint: one of :data:`SPECIAL`,
        ``"ssar"`` or ``"discovery:<group>/<version>"``.

    Raises:
        StatusError: 404 for unknown paths, 405 for methods the path does not allow.
    """
    if path in SPECIAL or path == SSAR_PATH:
        expected = "POST" if path == SSAR_PATH else "GET"
        if method != expected:
            raise _not_allowed()
        return "ssar" if path == SSAR_PATH else path
    parts = [unquote(part) for part in path.strip("/").split("/")]
    group, version, rest = _split_prefix(parts)
    if not rest:
        if method != "GET" or not resources.groups().get(f"{group}/{version}".lstrip("/")):
            raise _not_found()
        return f"discovery:{group}/{version}"
    namespace, plural, name = _split_rest(rest)
    rt = resources.by_path(group, version, plural)
    if rt is None or (not rt.namespaced and namespace is not None):
        raise _not_found()
    if rt.namespaced and namespace is None and (name is not None or method != "GET"):
        raise _not_found() if name is not None else _not_allowed()
    verb = _VERBS.get((method, name is not None))
    if verb is None:
        raise _not_allowed()
    if verb == "list" and query.get("watch") in ("true", "1"):
        verb = "watch"
    return Call(verb, rt, namespace, name, query)


def discovery(endpoint: str, server_address: str) -> dict[str, Any]:
    """Build a discovery document.

    Args:
        endpoint: ``/api``, ``/apis``, ``/version`` or ``discovery:<group>/<version>``.
        server_address: ``host:port`` of the server.

    Returns:
        The JSON document.
    """
    if endpoint == "/version":
        return VERSION
    if endpoint == "/api":
        cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs}
    if endpoint == "/apis":
        return _group_list()
    return _resource_list(endpoint.split(":", 1)[1].lstrip("/"))


def _group_list() -> dict[str, Any]:
    groups = []
    for api_version in [*resources.groups(), "authorization.k8s.io/v1"]:
        if "/" not in api_version:
            continue
        name, version = api_version.split("/")
        entry = {"groupVersion": api_version, "version": version}
        groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _resource_list(api_version: str) -> dict[str, Any]:
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    items = [
        {
            "name": rt.plural,
            "singularName": rt.kind.lower(),
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": verbs,
        }
        for rt in resources.groups().get(api_version, [])
    ]
    return {"kind": "APIResourceList", "groupVersion": api_version, "resources": items}
