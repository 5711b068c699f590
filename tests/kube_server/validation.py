"""Normalisation and validation of objects, with the real API server's messages.

:func:`normalize` turns a written object into what the server stores (Secrets: ``stringData``
folded into base64 ``data``, default ``type``; Namespaces: phase and name label).
:func:`validate` rejects what a real server rejects (400 for undecodable values, 422 Invalid for
bad names, labels, Secret keys and sizes).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tests.kube_server import errors
from tests.kube_server.resources import ResourceType

MAX_SECRET_SIZE = 1024 * 1024
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{_SUBDOMAIN}')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    f"used for validation is '{_LABEL}')"
)
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    f"'{_CONFIG_KEY}')"
)
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    f"for validation is '{_QUALIFIED_NAME}')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '(({_QUALIFIED_NAME})?)')"
)

Causes = list[tuple[str, str]]


def _full(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _invalid(field: str, value: str, why: str) -> tuple[str, str]:
    return field, f'{field}: Invalid value: "{value}": {why}'


# ---------------------------------------------------------------------------------------------
# normalisation


def _encode(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def normalize_secret(obj: dict[str, Any]) -> None:
    """Fold ``stringData`` into ``data`` (stringData wins), drop empty data, default the type."""
    data = dict(obj.get("data") or {})
    string_data = obj.pop("stringData", None) or {}
    if not isinstance(string_data, dict):
        raise errors.bad_request("json: cannot unmarshal stringData into map[string]string")
    _require_strings("stringData", string_data)
    data.update({key: _encode(value) for key, value in string_data.items()})
    if data:
        obj["data"] = data
    else:
        obj.pop("data", None)
    obj["type"] = obj.get("type") or "Opaque"


def normalize_namespace(obj: dict[str, Any]) -> None:
    """Give a Namespace its name label, its ``kubernetes`` finalizer and phase Active."""
    name = obj["metadata"]["name"]
    labels = obj["metadata"].setdefault("labels", {})
    labels[NAMESPACE_NAME_LABEL] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def normalize(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """Turn a written object into its stored form, in place.

    Args:
        rt: the resource type.
        obj: the object (a private copy the caller owns).

    Returns:
        The same object, for chaining.
    """
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    metadata = obj.setdefault("metadata", {})
    for empty in ("labels", "annotations", "ownerReferences", "finalizers"):
        if empty in metadata and not metadata[empty]:
            del metadata[empty]
    if rt.kind == "Secret":
        normalize_secret(obj)
    elif rt.kind == "Namespace":
        normalize_namespace(obj)
    return obj


# ---------------------------------------------------------------------------------------------
# validation


def _require_strings(field: str, mapping: Any) -> None:
    if mapping is None:
        return
    if not isinstance(mapping, dict):
        raise errors.bad_request(f"json: cannot unmarshal {field} into Go value of type map")
    for value in mapping.values():
        if not isinstance(value, str):
            raise errors.bad_request(
                f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                f"{field} of type string"
            )


def _name_causes(rt: ResourceType, name: str) -> Causes:
    if rt.name_rule == "path":
        if name in (".", "..") or "/" in name or "%" in name:
            return [_invalid("metadata.name", name, "may not contain '/' or '%'")]
        return []
    pattern, message, limit = (
        (_LABEL, _LABEL_MSG, 63) if rt.name_rule == "label" else (_SUBDOMAIN, _SUBDOMAIN_MSG, 253)
    )
    if len(name) > limit:
        return [_invalid("metadata.name", name, f"must be no more than {limit} characters")]
    if not _full(pattern, name):
        return [_invalid("metadata.name", name, message)]
    return []


def _label_key_causes(key: str) -> Causes:
    prefix, _, name = key.rpartition("/")
    field = "metadata.labels"
    if prefix and (len(prefix) > 253 or not _full(_SUBDOMAIN, prefix)):
        return [_invalid(field, key, "prefix part " + _SUBDOMAIN_MSG)]
    if not name or len(name) > 63 or not _full(_QUALIFIED_NAME, name):
        return [_invalid(field, key, _NAME_PART_MSG)]
    return []


def _label_causes(labels: dict[str, str]) -> Causes:
    causes: Causes = []
    for key, value in labels.items():
        causes += _label_key_causes(key)
        if len(value) > 63 or (value and not _full(_QUALIFIED_NAME, value)):
            causes.append(_invalid("metadata.labels", value, _VALUE_MSG))
    return causes


def _owner_causes(metadata: dict[str, Any]) -> Causes:
    causes: Causes = []
    for ref in metadata.get("ownerReferences") or []:
        for field in ("apiVersion", "kind", "name", "uid"):
            if not (isinstance(ref, dict) and ref.get(field)):
                path = f"metadata.ownerReferences.{field}"
                causes.append((path, f'{path}: Invalid value: "": {field} must not be empty'))
    return causes


def _secret_causes(obj: dict[str, Any]) -> Causes:
    data = obj.get("data") or {}
    causes: Causes = []
    total = 0
    for key, value in data.items():
        if key in (".", "..") or not _full(_CONFIG_KEY, key) or len(key) > 253:
            causes.append(_invalid(f"data[{key}]", key, _CONFIG_KEY_MSG))
        try:
            total += len(key) + len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise errors.bad_request(f"illegal base64 data in Secret key {key!r}") from None
    if total > MAX_SECRET_SIZE:
        causes.append(("data", f"data: Too long: may not be more than {MAX_SECRET_SIZE} bytes"))
    return causes


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Reject an object a real API server would reject.

    Args:
        rt: the resource type.
        obj: the normalised object.

    Raises:
        StatusError: 400 BadRequest for values that do not decode, 422 Invalid otherwise.
    """
    metadata = obj["metadata"]
    _require_strings("metadata.labels", metadata.get("labels"))
    _require_strings("metadata.annotations", metadata.get("annotations"))
    if rt.kind in ("Secret", "ConfigMap"):
        _require_strings("data", obj.get("data"))
    name = metadata.get("name") or ""
    causes = _name_causes(rt, name)
    causes += _label_causes(metadata.get("labels") or {})
    causes += _owner_causes(metadata)
    if rt.kind == "Secret":
        causes += _secret_causes(obj)
    if causes:
        raise errors.invalid(rt, name, causes)


def validate_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Reject changes a real server forbids: immutable Secret or ConfigMap data, Secret type.

    Args:
        rt: the resource type.
        old: the live object.
        new: the object about to be stored.

    Raises:
        StatusError: 422 Invalid.
    """
    name = old["metadata"]["name"]
    causes: Causes = []
    if rt.kind == "Secret" and old.get("type") != new.get("type"):
        causes.append(_invalid("type", str(new.get("type")), "field is immutable"))
    if rt.kind in ("Secret", "ConfigMap") and old.get("immutable"):
        for field in ("data", "binaryData", "immutable"):
            if old.get(field) != new.get(field):
                message = f"{field}: Forbidden: field is immutable when `immutable` is set"
                causes.append((field, message))
    if causes:
        raise errors.invalid(rt, name, causes)
