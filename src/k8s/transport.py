"""The retrying transport under the hub's HTTP client: retries, `Retry-After`, the hook budget.

429 (honouring `Retry-After`), 5xx and connection errors are retried with exponential backoff
under a bound on attempts and total time, so a hook never hangs; any other answer goes back to
the client at once. Every request of one hook shares one `HookBudget` (`k8s.policy`): retries
stop when the next wait (or a `Retry-After`) would overrun what is left of it, each request's
timeout is clamped to it, and once the API is judged unavailable the budget's breaker opens.
A 429's `Retry-After` closes one gate shared by every thread (`SharedGate`). Under it, each
thread sends on a connection pool of its own (`ThreadConnections`), whose sockets never wait
past the request's wall-clock deadline (`DeadlineBackend`): httpx's timeouts are per read, so
an answer trickled a byte at a time would otherwise hold a hook for ever.

Whatever the API (or a proxy in front of it) answers, what leaves this module is either a
transport error or a response whose error body is a clean JSON `Status` (`_as_status`): the
clients above never parse a proxy's page, an empty body or a nested one.
"""

from __future__ import annotations

import json
import math
import queue
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import httpcore2
import httpx2
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
)
from tenacity.stop import stop_base

from k8s.policy import BreakerOpenError, HookBudget, RetryPolicy

MINIMUM_REQUEST_TIMEOUT = 0.05
"""The shortest timeout a nearly spent budget gives a request (it may still be answered)."""
MAX_STATUS_TEXT = 256
"""The longest reason or message of an error answer the hub keeps (for statuses and logs)."""
MAX_STATUS_BODY = 1024 * 1024
"""The largest error body read as a `Status` (a real one is a few hundred bytes)."""
MAX_RETRY_AFTER = 3600.0
"""The longest `Retry-After` believed, in seconds; a longer one is shown as this."""
_RETRY_AFTER = re.compile(r"[0-9]{1,6}")
"""`Retry-After` as delay-seconds (RFC 9110): ASCII digits only (`'²'.isdigit()` is true)."""


def status_text(response: httpx2.Response) -> tuple[str, str]:
    """An error answer's reason and message, both cut to `MAX_STATUS_TEXT`.

    From its body when that is a small JSON object with text fields (a `Status`); otherwise (a
    proxy's HTML page, an empty, huge or deeply nested body, a field that is not text) the
    HTTP reason phrase and no message.
    """
    fields = _json_object(response.content)
    reason, message = fields.get("reason"), fields.get("message")
    if not isinstance(reason, str) or not reason:
        reason = response.reason_phrase or f"HTTP {response.status_code}"
    message = message if isinstance(message, str) else ""
    return reason[:MAX_STATUS_TEXT], message[:MAX_STATUS_TEXT]


def _json_object(content: bytes) -> dict[str, Any]:
    """`content` as a JSON object, or {} (too large, not JSON, nested past Python's limit)."""
    if len(content) > MAX_STATUS_BODY:
        return {}
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: httpx2.Response) -> float | None:
    """The answer's `Retry-After` in seconds, at most `MAX_RETRY_AFTER`; None if absent or odd.

    Only delay-seconds are read; an HTTP date, a sign, a fraction or a non-ASCII digit is no
    hint (the backoff applies).
    """
    header = response.headers.get("Retry-After", "").strip()
    if not _RETRY_AFTER.fullmatch(header):
        return None
    return min(float(header), MAX_RETRY_AFTER)


def _as_status(response: httpx2.Response, request: httpx2.Request) -> httpx2.Response:
    """An error answer as the clients above can parse it: a JSON `Status` of its code.

    lightkube parses every error body labelled JSON itself, and fails on a text, empty,
    nested or wrongly typed one; so the body is rebuilt from what `status_text` read, keeping
    the code, reason, message and `Retry-After`.
    """
    reason, message = status_text(response)
    code = response.status_code
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    headers = {"Content-Type": "application/json"}
    if (hint := retry_after(response)) is not None:
        headers["Retry-After"] = f"{hint:.0f}"
    return httpx2.Response(
        code,
        headers=headers,
        content=json.dumps(status).encode(),
        request=request,
        extensions={"reason_phrase": response.reason_phrase.encode("ascii", "replace")},
    )


class RequestDeadline:
    """The wall-clock deadline of the request each thread is sending (monotonic seconds)."""

    _local = threading.local()

    @classmethod
    def set(cls, at: float | None) -> None:
        """Bound this thread's socket waits until `at` (None: no bound beyond httpx's)."""
        cls._local.at = at

    @classmethod
    def clamp(cls, timeout: float | None) -> float | None:
        """`timeout` cut to what is left before this thread's deadline.

        Raises:
            httpcore2.ReadTimeout: the deadline has passed.
        """
        at = getattr(cls._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise httpcore2.ReadTimeout("the request's deadline has passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every read and write waits at most until the request's deadline."""

    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, RequestDeadline.clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, RequestDeadline.clamp(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, RequestDeadline.clamp(timeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    """httpcore's sockets, bounded by `RequestDeadline`: a trickled answer ends on time."""

    def __init__(self, inner: httpcore2.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        """Connect within the deadline; the connection keeps to it."""
        stream = self._inner.connect_tcp(
            host, port, RequestDeadline.clamp(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        """Connect within the deadline; the connection keeps to it."""
        stream = self._inner.connect_unix_socket(
            path, RequestDeadline.clamp(timeout), socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        """Sleep as the wrapped backend does."""
        self._inner.sleep(seconds)


def deadline_transport(verify: Any) -> httpx2.HTTPTransport:
    """An `httpx2.HTTPTransport` (verifying as `verify` says) on a `DeadlineBackend`.

    httpx does not take a network backend, so it is set on the pool it made; the
    transport tests (`tests/cluster/test_hostile_answers.py`) fail if that stops working.
    """
    transport = httpx2.HTTPTransport(verify=verify)
    pool = transport._pool  # noqa: SLF001 - the one way to give httpx a network backend
    pool._network_backend = DeadlineBackend(pool._network_backend)  # noqa: SLF001
    return transport


def from_api(code: int, reason: str) -> str:
    """How an error answer is named in statuses and logs."""
    return f"{code} from API ({reason})"


def describe(error: BaseException) -> str:
    """Why a request failed, in words fit for a status or a log (never a response body)."""
    if isinstance(error, BreakerOpenError):
        return str(error)
    if isinstance(error, _TransientResponseError):
        return from_api(error.response.status_code, error.reason)
    return f"connection error ({type(error).__name__})"


class _TransientResponseError(Exception):
    """A 429 or 5xx answer, raised inside the retry loop so that tenacity retries it."""

    def __init__(self, response: httpx2.Response) -> None:
        super().__init__(response.status_code)
        self.response = response
        self.reason, _ = status_text(response)

    @property
    def retry_after(self) -> float | None:
        return retry_after(self.response)


class _OutOfBudget(stop_base):
    """Stop when the next wait (a `Retry-After` as sent) would overrun the hook's budget."""

    def __init__(self, budget: HookBudget) -> None:
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = error.retry_after if isinstance(error, _TransientResponseError) else None
        needed = hinted if hinted is not None else retry_state.upcoming_sleep
        return needed >= self._budget.remaining()


class SharedGate:
    """The pace shared by every thread of one client: a `Retry-After` pause and an in-flight cap.

    A 429 closes the gate until its `Retry-After` has passed (every thread waits) and halves the
    number of requests let in at once (once per pause, however many 429s that burst caused);
    each success raises the cap again by `1/(PROBE * cap)`, up to `ceiling` (additive
    increase, multiplicative decrease), so one more request in flight is tried only after
    `PROBE` times the cap of successes. Concurrent writers thus settle just under the server's
    limit instead of bursting into it again each time the pause ends.
    """

    PROBE = 32

    def __init__(self, budget: HookBudget, ceiling: int = 64) -> None:
        self._budget = budget  # a Retry-After pause is spent from (and bounded by) the budget
        self._ceiling = float(ceiling)
        self._cap = float(ceiling)
        self._in_flight = 0
        self._opens = 0.0  # the clock's time before which no request is sent
        self._changed = threading.Condition()

    def enter(self) -> None:
        """Wait until the gate is open and the cap allows one more request in flight.

        Raises:
            BreakerOpenError: the pause would outlast the hook's budget (nothing is waited).
        """
        with self._changed:
            while True:
                paused = self._opens - self._budget.clock()
                if paused > 0:
                    self._budget.check(needing=paused)
                    self._changed.release()
                    try:
                        self._budget.pause(paused)
                    finally:
                        self._changed.acquire()
                elif self._in_flight < int(self._cap):
                    self._in_flight += 1
                    return
                else:
                    self._changed.wait()

    def leave(self, limited: bool, retry_after: float | None) -> None:
        """Record how the request ended: `limited` when it was answered 429."""
        with self._changed:
            self._in_flight -= 1
            now = self._budget.clock()
            if not limited:
                self._cap = min(self._ceiling, self._cap + 1 / (self.PROBE * self._cap))
            elif now >= self._opens:  # the first 429 of this pause
                self._cap = max(1.0, self._cap / 2)
                if retry_after:
                    self._opens = now + retry_after
            self._changed.notify_all()


class RetryingTransport(httpx2.BaseTransport):
    """Sends each HTTP request under the retry policy: every page of a list on its own.

    429 (honouring `Retry-After`, capped at `RetryPolicy.maximum`), 5xx and connection errors
    are retried with exponential backoff, within `attempts` and `deadline`; the last answer
    goes back to the client (lightkube raises it as an `ApiError`, the gateway's Secret writes
    as an `httpx2.HTTPStatusError`). Other answers are returned at once. Retrying per request
    (not per call) means a list of many pages resumes at the page that failed instead of
    starting again.

    The transport is shared by every thread of the client. A 429's `Retry-After` closes one
    shared gate (`SharedGate`) until that time: every request but a watch, of whichever
    thread, waits at the gate before it is sent, so concurrent writers back off together
    instead of each learning of the limit by its own 429.
    """

    def __init__(
        self,
        inner: httpx2.BaseTransport,
        policy: RetryPolicy,
        on_retry: Callable[[str], None],
        budget: HookBudget | None = None,
    ) -> None:
        """Wrap `inner`; `on_retry` is told why each retry happens; `budget` bounds them all."""
        self._inner = inner
        self._policy = policy
        self._on_retry = on_retry
        self.budget = budget or HookBudget.unbounded()
        self._backoff = wait_exponential(multiplier=policy.initial, max=policy.maximum)
        self._gate = SharedGate(self.budget)
        # One retry loop for every request: tenacity keeps each call's state per thread.
        self._retrying = Retrying(
            retry=retry_if_exception_type((_TransientResponseError, httpx2.TransportError)),
            wait=self._wait,
            stop=stop_any(
                stop_after_attempt(policy.attempts),
                stop_after_delay(policy.deadline),
                _OutOfBudget(self.budget),
            ),
            before_sleep=self._before_sleep,
            sleep=self.budget.pause,
            reraise=True,
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request`, retrying transient failures within the hook's budget.

        Raises:
            BreakerOpenError: the breaker is (or has just been) opened; nothing more is sent.
        """
        self.budget.check()
        try:
            response = self._retrying(self._send, request)
        except _TransientResponseError as last:
            self.budget.trip(_unavailable(last))
            return _as_status(last.response, request)
        except httpx2.TransportError as error:
            if self.budget.remaining() <= 0:  # timed out by the budget's clamp, not the API
                self.budget.check()
            self.budget.trip(f"API unreachable ({type(error).__name__})")
            raise
        if response.status_code < 400:
            return response
        response.read()
        response.close()
        return _as_status(response, request)

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()

    def _send(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.params.get("watch") in ("true", "1"):  # a stream: outside the gate
            RequestDeadline.set(None)
            return self._checked(self._inner.handle_request(request))
        self._gate.enter()
        self._within_budget(request)
        limited, hinted = False, None
        try:
            return self._checked(self._inner.handle_request(request))
        except _TransientResponseError as error:
            limited = error.response.status_code == 429
            hinted = (
                None if error.retry_after is None else min(error.retry_after, self._policy.maximum)
            )
            raise
        finally:
            self._gate.leave(limited, hinted)

    def _within_budget(self, request: httpx2.Request) -> None:
        """Clamp the request's timeouts to what is left of the hook's budget, on the wall clock.

        The same bound (and the request's own longest timeout) is the thread's
        `RequestDeadline`, which every socket wait of the request keeps to, so a trickled
        answer is cut there too. So a request sent late in the budget cannot hold the hook a
        whole `REQUEST_TIMEOUT` past it: a pass overruns its budget by at most
        `MINIMUM_REQUEST_TIMEOUT` per request in flight, all at once.
        """
        remaining = self.budget.remaining()
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        longest = max((t for t in timeouts.values() if t is not None), default=math.inf)
        limit = max(min(remaining, longest), MINIMUM_REQUEST_TIMEOUT)
        RequestDeadline.set(None if math.isinf(limit) else time.monotonic() + limit)
        if math.isinf(remaining):
            return
        request.extensions["timeout"] = {
            kind: limit if seconds is None else min(seconds, limit)
            for kind, seconds in timeouts.items()
        }

    @staticmethod
    def _checked(response: httpx2.Response) -> httpx2.Response:
        if response.status_code == 429 or response.status_code >= 500:
            response.read()
            response.close()
            raise _TransientResponseError(response)
        return response

    def _wait(self, state: RetryCallState) -> float:
        """The backoff before the next try; a hinted 429 waits at the gate instead."""
        error = state.outcome.exception() if state.outcome else None
        hinted = error.retry_after if isinstance(error, _TransientResponseError) else None
        return 0.0 if hinted is not None else self._backoff(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if error is not None:
            self._on_retry(describe(error))


def _unavailable(last: _TransientResponseError) -> str:
    """The cause shown when retries of a 429 or 5xx answer are over."""
    if last.response.status_code == 429:
        hinted = last.retry_after
        if hinted is None:
            return "API rate-limited"
        if hinted >= MAX_RETRY_AFTER:
            return "API rate-limited, retry after an hour or more"
        return f"API rate-limited, retry after {hinted:.0f} s"
    return f"API unavailable ({describe(last)})"


class ThreadConnections(httpx2.BaseTransport):
    """Gives each thread a connection pool of its own, passed on to a later thread when it ends.

    httpcore's pool, shared by threads, probes every idle connection (a `select`) under one
    lock each time it assigns a request or a response ends, so concurrent writers queue on
    that lock and those probes. A pool per thread keeps one connection busy and probed only
    by its own thread; when the thread ends (a pass's writers do), its pool waits for the
    next thread that needs one, so a later pass reuses the connections instead of opening more.
    """

    def __init__(self, make: Callable[[], httpx2.BaseTransport]) -> None:
        """Make each pool with `make` (an `httpx2.HTTPTransport`, verified as configured)."""
        self._make = make
        self._mine = threading.local()  # this thread's lease on a pool
        self._waiting: queue.SimpleQueue[httpx2.BaseTransport] = queue.SimpleQueue()
        self._made: list[httpx2.BaseTransport] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` through this thread's pool."""
        lease = getattr(self._mine, "lease", None)
        if lease is None:
            lease = self._mine.lease = _Lease(self._take(), self._waiting)
        return lease.pool.handle_request(request)

    def close(self) -> None:
        """Close every pool made (and so their connections)."""
        with self._lock:
            made, self._made = self._made, []
        for pool in made:
            pool.close()

    def _take(self) -> httpx2.BaseTransport:
        try:
            return self._waiting.get_nowait()
        except queue.Empty:
            pool = self._make()
            with self._lock:
                self._made.append(pool)
            return pool


class _Lease:
    """A thread's hold on a pool: when the thread ends and drops it, the pool waits again."""

    def __init__(self, pool: httpx2.BaseTransport, waiting: queue.SimpleQueue) -> None:
        self.pool = pool
        weakref.finalize(self, waiting.put, pool)
