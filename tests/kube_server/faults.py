"""Fault injection and the request log of the fake API server.

A :class:`Fault` describes what to do to matching requests (an error status, a dropped
connection, a delay, a watch that ends early or answers 410); :class:`FaultSet` picks the fault
for each request, using a seeded random generator so that probabilistic faults are reproducible.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from tests.kube_server import errors
from tests.kube_server.operations import Call


@dataclass(frozen=True)
class RawAnswer:
    """An answer sent exactly as given, whatever a real API server would say.

    Attributes:
        status: the HTTP status.
        body: the body's bytes.
        headers: every header but Content-Length (which is always sent), Content-Type included
            or left out as the case may be.
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """A fault to inject into matching requests.

    Attributes:
        method: the HTTP method to match (None: any).
        path_contains: a substring the request path must contain (None: any).
        status: answer with this status (429, 500, 503, 403, 409...) and a real-looking Status.
        html: answer `status` with an HTML page instead, as a proxy in front of the API does.
        retry_after: the ``Retry-After`` header (and ``details.retryAfterSeconds``) for a 429.
        drop_connection: close the connection without any response.
        delay: seconds to wait before handling the request (combines with the others).
        times: how many matching requests the fault applies to; -1 for ever.
        probability: the chance that a matching request is affected.
        watch_end_early: (watch requests only) end the stream right after its initial events.
        watch_gone: (watch requests only) answer with an ``ERROR`` event, Status 410 Expired.
        answer: send this raw answer instead of handling the request (a proxy's page, a
            mislabelled or malformed body, odd headers).
        trickle: with ``answer``, seconds to wait before each byte of it (status line and
            headers included), as a slow or hostile peer sends.
    """

    method: str | None = None
    path_contains: str | None = None
    status: int | None = None
    html: bool = False
    retry_after: int | None = None
    drop_connection: bool = False
    delay: float = 0.0
    times: int = 1
    probability: float = 1.0
    watch_end_early: bool = False
    watch_gone: bool = False
    answer: RawAnswer | None = None
    trickle: float = 0.0

    def matches(self, method: str, path: str, watch: bool) -> bool:
        """Tell whether a request is one this fault targets (ignoring probability and count).

        Args:
            method: the HTTP method.
            path: the request path, without the query string.
            watch: whether the request is a watch.

        Returns:
            True when the fault targets the request.
        """
        if self.times == 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path_contains is not None and self.path_contains not in path:
            return False
        return watch or not (self.watch_end_early or self.watch_gone)


@dataclass
class RequestRecord:
    """One HTTP request the server answered.

    Attributes:
        method: the HTTP method.
        path: the path, without the query string.
        query: the query parameters (last value of each).
        status: the HTTP status sent; 0 when the connection was dropped without a response.
        watch: whether the request was a watch.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    status: int = 0
    watch: bool = False


class FaultSet:
    """The injected faults, consulted once per request.

    Args:
        seed: the seed of the random generator used for ``probability``.
    """

    def __init__(self, seed: int = 0):
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.rng = random.Random(seed)

    def add(self, fault: Fault) -> None:
        """Inject a fault (checked after the faults injected before it)."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, watch: bool) -> Fault | None:
        """Pick the fault for a request and count it as used.

        Args:
            method: the HTTP method.
            path: the request path.
            watch: whether the request is a watch.

        Returns:
            The first matching fault whose probability draw succeeds, or None.
        """
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path, watch):
                    continue
                if fault.probability < 1.0 and self.rng.random() >= fault.probability:
                    continue
                if fault.times > 0:
                    fault.times -= 1
                self._faults = [f for f in self._faults if f.times != 0]
                return fault
            return None


def fault_error(fault: Fault, call: Call | None, user: str) -> errors.StatusError:
    """Build the error an injected status answers with, with a real server's wording.

    Args:
        fault: the fault (its ``status`` is set).
        call: the routed request, when the path names a resource.
        user: the user quoted in Forbidden messages.

    Returns:
        The error to send.
    """
    status = fault.status or 500
    if status == 429:
        return errors.too_many_requests(fault.retry_after)
    if call is not None and status == 403:
        return errors.forbidden(call.rt, call.verb, call.name, call.namespace, user)
    if call is not None and status == 404 and call.name:
        return errors.not_found(call.rt, call.name)
    if call is not None and status == 409:
        return errors.conflict(call.rt, call.name)
    if status == 410:
        return errors.expired("0", 1)
    error = errors.generic(status)
    if fault.retry_after is not None:
        error.headers["Retry-After"] = str(fault.retry_after)
    return error
