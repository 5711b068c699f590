"""Label and field selectors, parsed and matched as the Kubernetes API server does.

Label selectors support ``k=v``, ``k==v``, ``k!=v``, ``k`` (exists), ``!k``, ``k in (a,b)``,
``k notin (a,b)``, ``k>n``, ``k<n``; a comma means AND. ``!=`` and ``notin`` also match objects
that lack the label. Field selectors support ``=``, ``==`` and ``!=`` on the fields a resource type
declares (``metadata.name``, ``metadata.namespace``, plus ``type`` for Secrets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from tests.kube_server import errors

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^)]*)\)$")
_NOT_EXISTS_RE = re.compile(rf"^!\s*({_KEY})$")
_BINARY_RE = re.compile(rf"^({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})$")
_EXISTS_RE = re.compile(rf"^({_KEY})$")


@dataclass(frozen=True)
class Requirement:
    """One label requirement.

    Attributes:
        key: the label key.
        op: one of ``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!``, ``>``, ``<``.
        values: the values the operator compares with.
    """

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Tell whether a set of labels satisfies this requirement.

        Args:
            labels: the object's labels.

        Returns:
            True when the labels satisfy the requirement.
        """
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        return present and _compare(self.op, value, self.values[0])


def _compare(op: str, value: str | None, bound: str) -> bool:
    try:
        number, limit = int(value or ""), int(bound)
    except ValueError:
        return False
    return number > limit if op == ">" else number < limit


def split_requirements(selector: str) -> list[str]:
    """Split a selector on the commas that are not inside parentheses.

    Args:
        selector: the raw selector string.

    Returns:
        The non-empty, stripped requirement strings.
    """
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _parse_requirement(text: str) -> Requirement:
    if match := _SET_RE.match(text):
        values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
        return Requirement(match.group(1), match.group(2), values)
    if match := _NOT_EXISTS_RE.match(text):
        return Requirement(match.group(1), "!")
    if match := _BINARY_RE.match(text):
        op = "=" if match.group(2) == "==" else match.group(2)
        return Requirement(match.group(1), op, (match.group(3),))
    if match := _EXISTS_RE.match(text):
        return Requirement(match.group(1), "exists")
    raise errors.bad_request(f"unable to parse requirement: {text!r}")


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector (a conjunction of requirements)."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, selector: str | None) -> LabelSelector:
        """Parse a ``labelSelector`` query parameter.

        Args:
            selector: the raw selector, or None for "everything".

        Returns:
            The selector.

        Raises:
            StatusError: 400 BadRequest when the selector cannot be parsed.
        """
        if not selector:
            return cls()
        return cls(tuple(_parse_requirement(part) for part in split_requirements(selector)))

    def matches(self, obj: dict[str, Any]) -> bool:
        """Tell whether an object's labels satisfy every requirement."""
        if not self.requirements:
            return True
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req.matches(labels) for req in self.requirements)


def _metadata_field(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda obj: (obj.get("metadata") or {}).get(name) or ""


_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": _metadata_field("name"),
    "metadata.namespace": _metadata_field("namespace"),
}
_EXTRA_FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "Secret": {"type": lambda obj: obj.get("type") or ""},
    "Namespace": {"status.phase": lambda obj: (obj.get("status") or {}).get("phase") or ""},
    "Pod": {
        "spec.nodeName": lambda obj: (obj.get("spec") or {}).get("nodeName") or "",
        "status.phase": lambda obj: (obj.get("status") or {}).get("phase") or "",
    },
}
_FIELD_RE = re.compile(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$")


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector: (getter, negated, value) terms, all of which must hold."""

    terms: tuple[tuple[Callable[[dict[str, Any]], str], bool, str], ...] = ()

    @classmethod
    def parse(cls, selector: str | None, kind: str) -> FieldSelector:
        """Parse a ``fieldSelector`` query parameter for a kind.

        Args:
            selector: the raw selector, or None for "everything".
            kind: the kind being listed (decides which fields are supported).

        Returns:
            The selector.

        Raises:
            StatusError: 400 BadRequest on a syntax error or an unsupported field.
        """
        if not selector:
            return cls()
        fields = {**_FIELDS, **_EXTRA_FIELDS.get(kind, {})}
        terms = []
        for part in split_requirements(selector):
            match = _FIELD_RE.match(part)
            if not match:
                raise errors.bad_request(
                    f"invalid selector: '{selector}'; can't understand '{part}'"
                )
            name, op, value = match.groups()
            if name not in fields:
                raise errors.bad_request(f"field label not supported: {name}")
            terms.append((fields[name], op == "!=", value.strip()))
        return cls(tuple(terms))

    def matches(self, obj: dict[str, Any]) -> bool:
        """Tell whether an object satisfies every term."""
        return all((getter(obj) == value) != negated for getter, negated, value in self.terms)


@dataclass(frozen=True)
class Selector:
    """A label selector and a field selector together."""

    labels: LabelSelector = LabelSelector()
    fields: FieldSelector = FieldSelector()

    @classmethod
    def from_query(cls, query: dict[str, str], kind: str) -> Selector:
        """Build the selector of a list or watch request from its query parameters."""
        return cls(
            LabelSelector.parse(query.get("labelSelector")),
            FieldSelector.parse(query.get("fieldSelector"), kind),
        )

    @property
    def empty(self) -> bool:
        """True when the selector matches everything."""
        return not self.labels.requirements and not self.fields.terms

    def matches(self, obj: dict[str, Any] | None) -> bool:
        """Tell whether an object (None never matches) satisfies both selectors."""
        return obj is not None and self.labels.matches(obj) and self.fields.matches(obj)
