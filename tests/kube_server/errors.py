"""Kubernetes ``Status`` errors with the messages a real API server sends.

Every failure of the fake server is raised as a :class:`StatusError` and sent to the client as a
``Status`` object (``Content-Type: application/json`` exactly, as lightkube requires).
"""

from __future__ import annotations

from typing import Any

from tests.kube_server.resources import ResourceType

CONFLICT_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)

_REASONS = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "too old resource version"),
    415: ("UnsupportedMediaType", "the body of the request was in an unknown format"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "Timeout: request did not complete within requested timeout"),
}


class StatusError(Exception):
    """A failed request, carrying the ``Status`` body and HTTP headers to send.

    Attributes:
        code: the HTTP status code.
        reason: the Kubernetes ``reason`` (``NotFound``, ``Conflict``...).
        message: the human-readable message.
        details: the ``details`` field of the Status (may be empty).
        headers: extra HTTP headers (``Retry-After``).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """Build the ``Status`` object sent as the response body.

        Returns:
            The Status as a JSON-ready dict.
        """
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType, name: str | None, kind: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt.group:
        details["group"] = rt.group
    details["kind"] = kind or rt.plural
    return details


def generic(code: int, message: str | None = None, **details: Any) -> StatusError:
    """Build an error for a status code with its standard reason.

    Args:
        code: the HTTP status code.
        message: the message; the standard one for the code when None.
        **details: the Status details.

    Returns:
        The error.
    """
    reason, default = _REASONS.get(code, ("", f"the server responded with status {code}"))
    return StatusError(code, reason, message or default, details)


def not_found(rt: ResourceType, name: str) -> StatusError:
    """Build ``<resource> "<name>" not found`` (404)."""
    return StatusError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> StatusError:
    """Build ``<resource> "<name>" already exists`` (409 AlreadyExists)."""
    return StatusError(
        409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name)
    )


def conflict(rt: ResourceType, name: str | None, why: str = CONFLICT_MODIFIED) -> StatusError:
    """Build ``Operation cannot be fulfilled on <resource> "<name>": ...`` (409 Conflict)."""
    target = f'{rt.qualified} "{name}"' if name else rt.qualified
    return StatusError(
        409, "Conflict", f"Operation cannot be fulfilled on {target}: {why}", _details(rt, name)
    )


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str]]) -> StatusError:
    """Build ``<Kind> "<name>" is invalid: <causes>`` (422 Invalid).

    Args:
        rt: the resource type.
        name: the object name.
        causes: (field, message) pairs, the message already including the field path.

    Returns:
        The error.
    """
    texts = [text for _, text in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(rt, name, kind=rt.kind)
    details["causes"] = [
        {"reason": "FieldValueInvalid", "message": text, "field": field} for field, text in causes
    ]
    return StatusError(422, "Invalid", f'{rt.kind} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> StatusError:
    """Build a 400 BadRequest."""
    return StatusError(400, "BadRequest", message)


def forbidden(
    rt: ResourceType, verb: str, name: str | None, namespace: str | None, user: str
) -> StatusError:
    """Build the RBAC denial message of a real API server (403 Forbidden).

    Args:
        rt: the resource type.
        verb: the RBAC verb (get, list, watch, create, update, patch, delete...).
        name: the object name, for verbs on one object.
        namespace: the namespace, or None at the cluster scope.
        user: the user name quoted in the message.

    Returns:
        The error.
    """
    subject = f'{rt.qualified} "{name}"' if name else rt.qualified
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{rt.plural}" '
        f'in API group "{rt.group}" {scope}'
    )
    return StatusError(403, "Forbidden", message, _details(rt, name))


def expired(requested: int | str, oldest: int) -> StatusError:
    """Build the 410 Expired sent for a too-old resourceVersion."""
    return StatusError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def too_many_requests(retry_after: int | None) -> StatusError:
    """Build a 429 with its ``Retry-After`` header."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    details = {"retryAfterSeconds": retry_after} if retry_after is not None else {}
    return StatusError(429, *_REASONS[429], details=details, headers=headers)
