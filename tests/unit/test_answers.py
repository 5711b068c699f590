"""What the gateway takes from an API answer it cannot trust: bounded, typed, never a crash."""

from __future__ import annotations

import json

import httpx2
import pytest

from k8s import ConflictError, InvalidError, KubeError, NotFoundError, UnavailableError
from k8s.gateway import _translate, _written_version
from k8s.transport import MAX_STATUS_TEXT


def error_answer(code: int, content: bytes) -> httpx2.HTTPStatusError:
    request = httpx2.Request("PUT", "https://api.test/api/v1/namespaces/a/secrets/b")
    response = httpx2.Response(code, content=content, request=request)
    return httpx2.HTTPStatusError("error", request=request, response=response)


def status(code: int, reason: object, message: object = "") -> bytes:
    return json.dumps(
        {"kind": "Status", "code": code, "reason": reason, "message": message}
    ).encode()


def test_a_written_version_is_taken_when_it_is_a_string():
    assert _written_version(b'{"metadata": {"resourceVersion": "42"}}') == "42"


@pytest.mark.parametrize(
    "content",
    [
        b'{"metadata": {"resourceVersion": 42}}',
        b'{"metadata": {"resourceVersion": ""}}',
        b'{"metadata": ["resourceVersion"]}',
        b"[1, 2]",
        b"<html>not json</html>",
        b"",
        b"\xff\xfe",
    ],
)
def test_an_answer_to_a_write_without_a_version_is_not_a_write(content):
    with pytest.raises(ValueError):
        _written_version(content)


@pytest.mark.parametrize(
    ("code", "content", "kind", "reason"),
    [
        (409, status(409, "Conflict"), ConflictError, "Conflict"),
        (404, status(404, "NotFound", "secrets not found"), NotFoundError, "secrets not found"),
        (422, status(422, "Invalid", "data: value " + "x" * 10), InvalidError, "Invalid"),
        (400, b"<html>proxy</html>", InvalidError, "Bad Request"),
        (503, b"<html>proxy</html>", UnavailableError, "503 from API (Service Unavailable)"),
        (418, status(418, ["not", "text"]), KubeError, "I'm a teapot"),
    ],
)
def test_an_error_answer_becomes_the_matching_kube_error(code, content, kind, reason):
    error = _translate(error_answer(code, content))
    assert type(error) is kind
    assert error.code == code
    assert error.reason == reason


def test_an_invalid_answers_message_is_never_kept():
    # a 422 may quote what was sent; the hub keeps only the reason
    error = _translate(error_answer(422, status(422, "Invalid", "data[key]: value 's3cr3t'")))
    assert "s3cr3t" not in error.reason


def test_a_huge_reason_is_cut():
    error = _translate(error_answer(404, status(404, "NotFound", "m" * 100_000)))
    assert len(error.reason) == MAX_STATUS_TEXT
