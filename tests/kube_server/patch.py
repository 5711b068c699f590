"""Patch algorithms: JSON merge patch, strategic merge patch, JSON patch and server-side apply.

All functions are pure: they return new documents and never modify their arguments. Errors are
raised as :class:`PatchError`; the caller maps them to the HTTP status a real server uses.
"""

from __future__ import annotations

import copy
from typing import Any

# Lists that a strategic merge patch merges by key instead of replacing (path -> merge key;
# "" merges a list of scalars as a set).
STRATEGIC_LIST_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
    ("metadata", "finalizers"): "",
    ("secrets",): "name",
    ("imagePullSecrets",): "name",
}


class PatchError(Exception):
    """A patch that cannot be decoded (``bad_request``) or applied (otherwise)."""

    def __init__(self, message: str, bad_request: bool = False):
        super().__init__(message)
        self.bad_request = bad_request


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch.

    Args:
        target: the document to patch.
        patch: the merge patch; ``null`` values delete keys.

    Returns:
        The patched document.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: dict, patch: Any, top_level: frozenset[str]) -> dict:
    """Apply a strategic merge patch, as far as the supported kinds need it.

    Maps merge as in a merge patch; lists listed in :data:`STRATEGIC_LIST_KEYS` merge by key,
    other lists are replaced; ``$patch: replace|delete`` and ``$retainKeys`` directives are
    honoured; top-level fields that the kind does not have are dropped (spark8t sends a stray
    ``"op"``).

    Args:
        target: the live object.
        patch: the patch document.
        top_level: the top-level fields of the kind.

    Returns:
        The patched object.

    Raises:
        PatchError: when the patch is not a JSON object.
    """
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", bad_request=True)
    kept = {k: v for k, v in patch.items() if k in top_level or k.startswith("$")}
    return _strategic(target, kept, ())


def _strategic(target: Any, patch: dict, path: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        _strategic_field(result, key, value, path + (key,))
    return result


def _strategic_field(result: dict, key: str, value: Any, path: tuple[str, ...]) -> None:
    if value is None:
        result.pop(key, None)
    elif isinstance(value, dict):
        merged = _strategic(result.get(key), value, path)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    elif isinstance(value, list) and path in STRATEGIC_LIST_KEYS:
        result[key] = _merge_list(result.get(key) or [], value, STRATEGIC_LIST_KEYS[path])
    else:
        result[key] = copy.deepcopy(value)


def _merge_list(live: list, patch: list, key: str) -> list:
    if not key:
        return list(live) + [item for item in patch if item not in live]
    merged = copy.deepcopy(live)
    index = {item.get(key): pos for pos, item in enumerate(merged) if isinstance(item, dict)}
    for item in patch:
        if not isinstance(item, dict):
            continue
        pos = index.get(item.get(key))
        if item.get("$patch") == "delete":
            merged = [
                m for m in merged if not (isinstance(m, dict) and m.get(key) == item.get(key))
            ]
            index = {m.get(key): p for p, m in enumerate(merged) if isinstance(m, dict)}
        elif pos is None:
            index[item.get(key)] = len(merged)
            merged.append(copy.deepcopy(item))
        else:
            merged[pos] = _strategic(merged[pos], item, ())
    return merged


# ---------------------------------------------------------------------------------------------
# RFC 6902 JSON patch


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {path!r}", bad_request=True)
    if path == "":
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list, token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in {path}")
    position = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if position > limit:
        raise PatchError(f"array index out of bounds in {path}")
    return position


def _parent(doc: Any, tokens: list[str], path: str, op: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, allow_end=False)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"')
    return node


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path, op), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, allow_end=False)]
    raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"')


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return copy.deepcopy(value)
    parent, last = _parent(doc, tokens, path, "add"), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), copy.deepcopy(value))
    else:
        raise PatchError(f'add operation does not apply: doc is missing path: "{path}"')
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path, op), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, path, allow_end=False)]
    else:
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"')
    return doc


def _apply_op(doc: Any, op: dict) -> Any:
    if not isinstance(op, dict) or "op" not in op or "path" not in op:
        raise PatchError("each JSON patch operation needs 'op' and 'path'", bad_request=True)
    kind, path = op["op"], op["path"]
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"missing value for {kind} operation at {path}", bad_request=True)
    if kind == "add":
        return _add(doc, path, op["value"])
    if kind == "remove":
        return _remove(doc, path)
    if kind == "replace":
        return _add(_remove(doc, path, "replace"), path, op["value"])
    if kind == "test":
        if _get(doc, path, "test") != op["value"]:
            raise PatchError(f"testing value {path} failed: test failed")
        return doc
    if kind in ("move", "copy"):
        value = copy.deepcopy(_get(doc, op.get("from", ""), kind))
        if kind == "move":
            doc = _remove(doc, op.get("from", ""), kind)
        return _add(doc, path, value)
    raise PatchError(f"Unexpected kind: {kind}", bad_request=True)


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (add, remove, replace, move, copy, test).

    Args:
        target: the document to patch.
        operations: the list of operations; pointers use ``~1`` for ``/`` and ``~0`` for ``~``.

    Returns:
        The patched document.

    Raises:
        PatchError: when the patch is malformed or an operation does not apply.
    """
    if not isinstance(operations, list):
        raise PatchError("json patch must be a JSON array of operations", bad_request=True)
    doc = copy.deepcopy(target)
    for op in operations:
        doc = _apply_op(doc, op)
    return doc


# ---------------------------------------------------------------------------------------------
# Server-side apply (approximation without cross-manager ownership)


def leaf_paths(doc: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """List the paths of the leaves (non-map values) of a document.

    Args:
        doc: the document.
        prefix: the path of ``doc`` itself.

    Returns:
        The set of key paths whose values are not maps (or are empty maps).
    """
    if not isinstance(doc, dict) or not doc:
        return {prefix} if prefix else set()
    paths: set[tuple[str, ...]] = set()
    for key, value in doc.items():
        paths |= leaf_paths(value, prefix + (key,))
    return paths


def _delete_path(doc: dict, path: tuple[str, ...]) -> None:
    node = doc
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _deep_merge(live: Any, applied: Any) -> Any:
    if not isinstance(applied, dict) or not isinstance(live, dict):
        return copy.deepcopy(applied)
    result = copy.deepcopy(live)
    for key, value in applied.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _deep_merge(result.get(key), value)
    return result


def server_side_apply(live: dict, applied: dict, previous: dict | None) -> dict:
    """Merge an applied configuration into the live object, like server-side apply.

    Fields the same field manager applied before and no longer applies are removed; the
    applied fields are then merged in (maps recursively, lists replaced). Ownership by other
    managers is not tracked, so apply never reports a conflict.

    Args:
        live: the live object (``{}`` when the object does not exist yet).
        applied: the configuration being applied.
        previous: the configuration the same manager applied last time, if any.

    Returns:
        The new object.
    """
    result = copy.deepcopy(live)
    if previous:
        for path in leaf_paths(previous) - leaf_paths(applied):
            if path[0] not in ("apiVersion", "kind") and path[:2] != ("metadata", "name"):
                _delete_path(result, path)
    return _deep_merge(result, applied)
