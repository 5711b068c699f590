"""What each Kubernetes verb does to the store: get, list, create, update, patch, delete...

:class:`Api` implements the verbs on top of :class:`~tests.kube_server.store.Store` with the
semantics and error messages of a real API server. It knows nothing about HTTP: a verb receives a
:class:`Call` and returns ``(status, body bytes)`` or raises
:class:`~tests.kube_server.errors.StatusError`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from tests.kube_server import errors, patch, resources, validation
from tests.kube_server.resources import ResourceType
from tests.kube_server.selectors import Selector
from tests.kube_server.store import Entry, Store, encode, key_of, now

Reply = tuple[int, bytes]
DEFAULT_USER = "system:serviceaccount:test:hub"
APPLY = "application/apply-patch+yaml"
_ACCEPTED = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
    "application/strategic-merge-patch+json"
)


@dataclass
class Call:
    """One API request, already routed.

    Attributes:
        verb: the RBAC verb (get, list, watch, create, update, patch, delete, deletecollection).
        rt: the resource type.
        namespace: the namespace of the path, None for cluster scope or all namespaces.
        name: the object name, None for collection requests.
        query: the query parameters (last value of each).
        body: the raw request body.
        content_type: the request's Content-Type.
    """

    verb: str
    rt: ResourceType
    namespace: str | None = None
    name: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = ""

    @property
    def dry_run(self) -> bool:
        """True for ``dryRun=All`` requests, which must not change the store."""
        return bool(self.query.get("dryRun"))


class _YamlLoader(yaml.SafeLoader):
    """A safe YAML loader that keeps timestamps as strings, like JSON would."""


_YamlLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def decode_json(body: bytes) -> Any:
    """Decode a JSON request body, answering 400 when it is not JSON."""
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise errors.bad_request(f"json parse error: {exc}") from None


def decode_object(body: bytes, yaml_ok: bool = False) -> dict[str, Any]:
    """Decode a request body that must hold one object (a JSON, or YAML, mapping).

    Args:
        body: the raw body.
        yaml_ok: also accept YAML (apply patches).

    Returns:
        The decoded object.

    Raises:
        StatusError: 400 when the body is not a mapping with a mapping ``metadata``.
    """
    try:
        obj = json.loads(body) if not yaml_ok else yaml.load(body, Loader=_YamlLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"error decoding the request body: {exc}") from None
    if not isinstance(obj, dict):
        raise errors.bad_request("Object 'Kind' is missing in the request body")
    if not isinstance(obj.setdefault("metadata", {}), dict):
        raise errors.bad_request(
            "json: cannot unmarshal metadata into Go value of type ObjectMeta"
        )
    return obj


def _check_kind(rt: ResourceType, obj: dict[str, Any]) -> None:
    version, kind = obj.get("apiVersion"), obj.get("kind")
    if version and version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({version}) does not match the expected API version "
            f"({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
        )


def _check_location(call: Call, metadata: dict[str, Any], need_name: bool) -> None:
    namespace = metadata.get("namespace")
    if call.rt.namespaced and namespace and namespace != call.namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if need_name and metadata.get("name") != call.name:
        raise errors.bad_request(
            f"the name of the object ({metadata.get('name')}) does not match the name on the URL "
            f"({call.name})"
        )


def _reject_rv_on_create(metadata: dict[str, Any]) -> None:
    try:
        version = int(metadata.get("resourceVersion") or 0)
    except (TypeError, ValueError):
        version = 0
    if version:
        raise errors.StatusError(
            500, "", "resourceVersion should not be set on objects to be created"
        )
    metadata.pop("resourceVersion", None)


def _assign_name(rt: ResourceType, metadata: dict[str, Any]) -> str:
    if not metadata.get("name") and metadata.get("generateName"):
        metadata["name"] = metadata["generateName"] + Store.new_uid()[:5]
    if not metadata.get("name"):
        message = "metadata.name: Required value: name or generateName is required"
        raise errors.invalid(rt, "", [("metadata.name", message)])
    return metadata["name"]


def _check_rv(rt: ResourceType, old: Entry, requested: Any) -> None:
    if requested and requested != old.obj["metadata"]["resourceVersion"]:
        raise errors.conflict(rt, old.obj["metadata"]["name"])


def _check_preconditions(rt: ResourceType, old: Entry, preconditions: dict[str, Any]) -> None:
    meta, name = old.obj["metadata"], old.obj["metadata"]["name"]
    uid, version = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != meta.get("uid"):
        why = f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}"
        raise errors.conflict(rt, name, why)
    if version and version != meta["resourceVersion"]:
        why = (
            f"Precondition failed: ResourceVersion in precondition: {version}, "
            f"ResourceVersion in object meta: {meta['resourceVersion']}"
        )
        raise errors.conflict(rt, name, why)


def encode_continue(rv: int, last: tuple[str, str]) -> str:
    """Build an opaque continue token from the list's resourceVersion and last key."""
    raw = json.dumps({"rv": rv, "start": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str | None) -> tuple[int, tuple[str, str]] | None:
    """Decode a continue token, answering 400 when it is not one of ours."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise errors.bad_request(f"continue key is not valid: {token!r}") from None


def parse_limit(value: str | None) -> int:
    """Parse the ``limit`` parameter (0 means no limit)."""
    try:
        return max(int(value or 0), 0)
    except ValueError:
        raise errors.bad_request(f"invalid limit: {value!r}") from None


def list_body(rt: ResourceType, metadata: dict[str, Any], raws: list[bytes]) -> bytes:
    """Assemble a ``<Kind>List`` from already encoded items."""
    head = encode({"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata})
    return head[:-1] + b',"items":[' + b",".join(raws) + b"]}"


def _patcher(content_type: str) -> Callable[[ResourceType, dict, Any], Any]:
    if content_type == "application/json-patch+json":
        return lambda rt, live, doc: patch.json_patch(live, doc)
    if content_type == "application/merge-patch+json":
        return lambda rt, live, doc: patch.merge_patch(live, doc)
    if content_type == "application/strategic-merge-patch+json":
        return lambda rt, live, doc: patch.strategic_merge_patch(live, doc, rt.top_level)
    raise errors.StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{_ACCEPTED}",
    )


class Api:
    """The verbs of the fake API server, over one store.

    Attributes:
        store: the object store.
        denied: (verb, resource) pairs this server's user is not allowed; ``*`` is a wildcard.
        user: the user name quoted in Forbidden messages.
    """

    def __init__(self, store: Store, user: str = DEFAULT_USER):
        self.store = store
        self.denied: set[tuple[str, str]] = set()
        self.user = user

    # -- authorisation ------------------------------------------------------------------

    def is_denied(self, verb: str, resource: str) -> bool:
        """Tell whether ``denied`` forbids a verb on a resource (plural)."""
        candidates = {(verb, resource), ("*", resource), (verb, "*"), ("*", "*")}
        return bool(candidates & self.denied)

    def authorize(self, call: Call) -> None:
        """Answer 403 Forbidden, with the real message, for requests ``denied`` forbids."""
        if self.is_denied(call.verb, call.rt.plural):
            raise errors.forbidden(call.rt, call.verb, call.name, call.namespace, self.user)

    def access_review(self, body: bytes) -> Reply:
        """Answer a SelfSubjectAccessReview from ``denied``.

        Args:
            body: the review (``spec.resourceAttributes.verb`` and ``.resource`` are used).

        Returns:
            201 and the review with ``status.allowed``.
        """
        review = decode_object(body)
        attributes = (review.get("spec") or {}).get("resourceAttributes")
        allowed = not attributes or not self.is_denied(
            attributes.get("verb", ""), attributes.get("resource", "")
        )
        review.update(apiVersion="authorization.k8s.io/v1", kind="SelfSubjectAccessReview")
        review["metadata"] = {"creationTimestamp": None}
        review["status"] = {"allowed": True, "reason": "allowed by the test API server"}
        if not allowed:
            review["status"] = {"allowed": False}
        return 201, encode(review)

    # -- shared write steps -------------------------------------------------------------

    def _require_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if rt.namespaced and not self.store.namespace_exists(namespace or ""):
            raise errors.not_found(resources.by_kind("Namespace"), namespace or "")

    def _fill_new(self, rt: ResourceType, obj: dict[str, Any], namespace: str | None) -> None:
        metadata = obj["metadata"]
        if rt.namespaced:
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        metadata["uid"] = self.store.new_uid()
        metadata["creationTimestamp"] = now()
        validation.normalize(rt, obj)
        validation.validate(rt, obj)

    def _carry(self, rt: ResourceType, obj: dict[str, Any], old: Entry) -> dict[str, Any]:
        metadata, old_meta = obj["metadata"], old.obj["metadata"]
        for kept in ("name", "namespace", "uid", "creationTimestamp"):
            if kept in old_meta:
                metadata[kept] = old_meta[kept]
        metadata["resourceVersion"] = old_meta["resourceVersion"]
        validation.normalize(rt, obj)
        validation.validate(rt, obj)
        validation.validate_update(rt, old.obj, obj)
        return obj

    def _commit(self, call: Call, obj: dict[str, Any], status: int) -> Reply:
        if call.dry_run:
            return status, encode(obj)
        return status, self.store.write(call.rt.kind, obj).raw

    # -- verbs ----------------------------------------------------------------------------

    def get(self, call: Call) -> Reply:
        """GET one object."""
        entry = self.store.get(call.rt.kind, call.namespace, call.name or "")
        if entry is None:
            raise errors.not_found(call.rt, call.name or "")
        return 200, entry.raw

    def list(self, call: Call) -> Reply:
        """GET a collection, with selectors and ``limit``/``continue`` pagination."""
        selector = Selector.from_query(call.query, call.rt.kind)
        limit = parse_limit(call.query.get("limit"))
        token = decode_continue(call.query.get("continue"))
        with self.store.cond:
            rv = token[0] if token else self.store.resource_version
            keys = self.store.keys(call.rt.kind, call.namespace, token[1] if token else None)
            raws, used, more = self._page(call.rt.kind, keys, selector, limit)
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if more:
            metadata["continue"] = encode_continue(rv, keys[used - 1])
            if selector.empty:
                metadata["remainingItemCount"] = len(keys) - used
        return 200, list_body(call.rt, metadata, raws)

    def _page(
        self, kind: str, keys: list[tuple[str, str]], selector: Selector, limit: int
    ) -> tuple[list[bytes], int, bool]:
        raws: list[bytes] = []
        used = 0
        for position, entry in enumerate(self.store.entries(kind, keys)):
            if not selector.matches(entry.obj):
                continue
            if limit and len(raws) == limit:
                return raws, used, True
            raws.append(entry.raw)
            used = position + 1
        return raws, used, False

    def create(self, call: Call) -> Reply:
        """POST a new object (201; 409 AlreadyExists; 404 when the namespace is missing)."""
        obj = decode_object(call.body)
        _check_kind(call.rt, obj)
        metadata = obj["metadata"]
        _check_location(call, metadata, need_name=False)
        name = _assign_name(call.rt, metadata)
        _reject_rv_on_create(metadata)
        with self.store.cond:
            self._require_namespace(call.rt, call.namespace)
            if self.store.get(call.rt.kind, call.namespace, name) is not None:
                raise errors.already_exists(call.rt, name)
            self._fill_new(call.rt, obj, call.namespace)
            return self._commit(call, obj, 201)

    def update(self, call: Call) -> Reply:
        """PUT a whole object (404 when missing; 409 Conflict on a stale resourceVersion)."""
        obj = decode_object(call.body)
        _check_kind(call.rt, obj)
        _check_location(call, obj["metadata"], need_name=True)
        with self.store.cond:
            old = self._existing(call)
            _check_rv(call.rt, old, obj["metadata"].get("resourceVersion"))
            return self._commit(call, self._carry(call.rt, obj, old), 200)

    def _existing(self, call: Call) -> Entry:
        entry = self.store.get(call.rt.kind, call.namespace, call.name or "")
        if entry is None:
            raise errors.not_found(call.rt, call.name or "")
        return entry

    def patch(self, call: Call) -> Reply:
        """PATCH an object with the algorithm its Content-Type names."""
        content_type = call.content_type.split(";")[0].strip().lower()
        if content_type == APPLY:
            return self._apply(call)
        patcher = _patcher(content_type)
        document = decode_json(call.body)
        with self.store.cond:
            old = self._existing(call)
            try:
                patched = patcher(call.rt, old.obj, document)
            except patch.PatchError as exc:
                raise errors.generic(400 if exc.bad_request else 422, str(exc)) from None
            if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
                raise errors.generic(422, "the patch removed the object's metadata")
            _check_location(call, patched["metadata"], need_name=True)
            _check_rv(call.rt, old, patched["metadata"].get("resourceVersion"))
            return self._commit(call, self._carry(call.rt, patched, old), 200)

    def _apply(self, call: Call) -> Reply:
        manager = call.query.get("fieldManager")
        if not manager:
            raise errors.StatusError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
            )
        config = decode_object(call.body, yaml_ok=True)
        for required in ("apiVersion", "kind"):
            if not config.get(required):
                raise errors.bad_request(f"{required} must be set")
        _check_kind(call.rt, config)
        _check_location(call, config["metadata"], need_name=True)
        with self.store.cond:
            old = self.store.get(call.rt.kind, call.namespace, call.name or "")
            if old is None:
                return self._apply_create(call, config, manager)
            _check_rv(call.rt, old, config["metadata"].get("resourceVersion"))
            uid = old.obj["metadata"]["uid"]
            previous = self.store.applied.get(uid, {}).get(manager)
            merged = patch.server_side_apply(old.obj, config, previous)
            reply = self._commit(call, self._carry(call.rt, merged, old), 200)
            if not call.dry_run:
                self.store.applied[uid][manager] = config
            return reply

    def _apply_create(self, call: Call, config: dict[str, Any], manager: str) -> Reply:
        obj = copy.deepcopy(config)
        _reject_rv_on_create(obj["metadata"])
        self._require_namespace(call.rt, call.namespace)
        self._fill_new(call.rt, obj, call.namespace)
        reply = self._commit(call, obj, 201)
        if not call.dry_run:
            self.store.applied[obj["metadata"]["uid"]][manager] = config
        return reply

    def delete(self, call: Call) -> Reply:
        """DELETE one object (200 with its last state; dependents are garbage-collected)."""
        options = decode_json(call.body) if call.body.strip() else {}
        options = options if isinstance(options, dict) else {}
        policy = call.query.get("propagationPolicy") or options.get("propagationPolicy")
        with self.store.cond:
            old = self._existing(call)
            _check_preconditions(call.rt, old, options.get("preconditions") or {})
            if call.dry_run:
                return 200, old.raw
            last = self.store.remove(call.rt.kind, key_of(old.obj), orphan=policy == "Orphan")
            return 200, (last or old).raw

    def deletecollection(self, call: Call) -> Reply:
        """DELETE a collection: every object matching the selectors; answers the deleted list."""
        selector = Selector.from_query(call.query, call.rt.kind)
        policy = call.query.get("propagationPolicy")
        with self.store.cond:
            keys = self.store.keys(call.rt.kind, call.namespace)
            victims = [
                e for e in self.store.entries(call.rt.kind, keys) if selector.matches(e.obj)
            ]
            raws = []
            for entry in victims:
                last = None
                if not call.dry_run:
                    last = self.store.remove(call.rt.kind, key_of(entry.obj), policy == "Orphan")
                raws.append((last or entry).raw)
            rv = self.store.resource_version
        return 200, list_body(call.rt, {"resourceVersion": str(rv)}, raws)

    # -- direct access (no HTTP) ----------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object directly, creating its namespace when missing.

        Args:
            obj: the object; ``metadata.uid`` and ``creationTimestamp`` are kept when given.

        Returns:
            A copy of the stored object.
        """
        rt = resources.by_kind(obj["kind"])
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        namespace = (metadata.get("namespace") or "default") if rt.namespaced else None
        with self.store.cond:
            if namespace and not self.store.namespace_exists(namespace):
                self.put(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                )
            old = self.store.get(rt.kind, namespace, metadata["name"])
            old_meta = old.obj["metadata"] if old else {}
            metadata["namespace"] = namespace
            if not namespace:
                del metadata["namespace"]
            metadata["uid"] = metadata.get("uid") or old_meta.get("uid") or self.store.new_uid()
            stamp = metadata.get("creationTimestamp") or old_meta.get("creationTimestamp")
            metadata["creationTimestamp"] = stamp or now()
            metadata.pop("resourceVersion", None)
            validation.normalize(rt, obj)
            validation.validate(rt, obj)
            return json.loads(self.store.write(rt.kind, obj).raw)
