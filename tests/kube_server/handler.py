"""The HTTP/1.1 request handler of the fake API server (keep-alive, chunked watch streams).

It parses each request, admits it under the server's concurrency limit (429 beyond it) and
latency, consults the fault injector, routes the request to
:class:`~tests.kube_server.operations.Api` and writes the answer. Every request is appended to the
server's request log *before* its response is written, so a client that has its answer can rely
on the log.
"""

from __future__ import annotations

import select
import socket
import traceback
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import parse_qs, urlsplit

from tests.kube_server import errors, routing
from tests.kube_server.faults import Fault, RequestRecord, fault_error
from tests.kube_server.operations import Call
from tests.kube_server.selectors import Selector
from tests.kube_server.store import encode
from tests.kube_server.watch import WatchStream, error_line

if TYPE_CHECKING:
    from tests.kube_server.server import KubeServer

JSON = "application/json"


class Handler(BaseHTTPRequestHandler):
    """Serve one connection's requests for a :class:`~tests.kube_server.server.KubeServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "kube-server/1.0"
    sys_version = ""

    @property
    def kube(self) -> KubeServer:
        """The KubeServer this handler serves."""
        return self.server.kube  # type: ignore[attr-defined]

    def setup(self) -> None:
        """Register the connection so that the server can close it when stopping."""
        super().setup()
        # Without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK add ~40 ms to
        # every response written in two parts (headers, then body).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.kube.register_connection(self.connection):
            self.close_connection = True
            self._shutdown_socket()

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self.kube.unregister_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep the test output quiet."""

    # -- request handling ---------------------------------------------------------------

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        watch = self.command == "GET" and query.get("watch") in ("true", "1")
        record = RequestRecord(self.command, path, query, 0, watch)
        try:
            body = self._read_body()
            if watch:
                self._respond(record, body)
            else:
                self._admitted(record, body)
        except errors.StatusError as error:
            self._send_error(record, error)
        except OSError:
            self.close_connection = True
        except Exception as exc:  # a bug in the fake server: answer 500, keep the traceback
            traceback.print_exc()
            if record.status:
                self.close_connection = True
            else:
                self._send_error(record, errors.generic(500, f"Internal error occurred: {exc!r}"))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

    def _admitted(self, record: RequestRecord, body: bytes) -> None:
        """Answer a non-watch request under the server's latency and concurrency limit."""
        if not self.kube.admit():
            raise errors.too_many_requests(self.kube.retry_after)
        try:
            if self.kube.latency:
                self.kube.sleep(self.kube.latency)
            self._respond(record, body)
        finally:
            self.kube.release()

    def _respond(self, record: RequestRecord, body: bytes) -> None:
        target: Call | str | errors.StatusError
        try:
            target = routing.route(record.method, record.path, record.query)
        except errors.StatusError as error:
            target = error
        fault = self.kube.faults.take(record.method, record.path, record.watch)
        if fault is not None and self._inject(fault, record, target):
            return
        if isinstance(target, errors.StatusError):
            raise target
        if isinstance(target, str):
            self._special(record, target, body)
            return
        target.body = body
        target.content_type = self.headers.get("Content-Type", "")
        self.kube.api.authorize(target)
        if target.verb == "watch":
            self._watch(record, target, fault)
            return
        status, payload = getattr(self.kube.api, target.verb)(target)
        self._send(record, status, payload)

    def _special(self, record: RequestRecord, endpoint: str, body: bytes) -> None:
        if endpoint == "ssar":
            self._send(record, *self.kube.api.access_review(body))
        elif endpoint in ("/healthz", "/livez", "/readyz"):
            self._send(record, 200, b"ok", content_type="text/plain")
        else:
            address = f"127.0.0.1:{self.server.server_address[1]}"
            self._send(record, 200, encode(routing.discovery(endpoint, address)))

    def _inject(self, fault: Fault, record: RequestRecord, target: Any) -> bool:
        """Apply a fault; True when the request is fully handled by it."""
        if fault.delay:
            self.kube.sleep(fault.delay)
        if fault.answer is not None:
            self._send_raw(record, fault.answer, fault.trickle)
            return True
        if fault.drop_connection:
            record.status = 0
            self.kube.record(record)
            self.close_connection = True
            self._shutdown_socket()
            return True
        if fault.status and fault.html:
            page = b"<html><body><h1>%d</h1>proxy error</body></html>" % fault.status
            self._send(record, fault.status, page, content_type="text/html")
            return True
        if fault.status:
            call = target if isinstance(target, Call) else None
            self._send_error(record, fault_error(fault, call, self.kube.api.user))
            return True
        return False

    # -- watch --------------------------------------------------------------------------

    def _watch(self, record: RequestRecord, call: Call, fault: Fault | None) -> None:
        selector = Selector.from_query(call.query, call.rt.kind)
        try:
            timeout = float(call.query.get("timeoutSeconds") or 0)
        except ValueError:
            raise errors.bad_request("invalid timeoutSeconds") from None
        stream = WatchStream(
            self.kube.store,
            call.rt,
            call.namespace,
            selector,
            call.query.get("resourceVersion"),
            timeout,
            client_gone=self._client_gone,
            end_early=bool(fault and fault.watch_end_early),
        )
        lines: Iterable[bytes] = stream.lines()
        if fault is not None and fault.watch_gone:
            lines = [error_line(errors.expired(call.query.get("resourceVersion") or "0", 1))]
        record.status = 200
        self.kube.record(record)
        self.send_response(200)
        self.send_header("Content-Type", JSON)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            self._chunk(line)
        self._chunk(b"")
        if self.kube.store.stopping:
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # -- low level ------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        return b""

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()

    def _send_error(self, record: RequestRecord, error: errors.StatusError) -> None:
        self._send(record, error.code, encode(error.status()), error.headers)

    def _send(
        self,
        record: RequestRecord,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = JSON,
    ) -> None:
        record.status = status
        self.kube.record(record)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_raw(self, record: RequestRecord, answer: Any, trickle: float) -> None:
        """Send `answer` byte for byte (one at a time, `trickle` seconds apart, if set)."""
        record.status = answer.status
        self.kube.record(record)
        head = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}"]
        head += [f"{name}: {value}" for name, value in answer.headers.items()]
        head.append(f"Content-Length: {len(answer.body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + answer.body
        if not trickle:
            self.wfile.write(raw)
            return
        for index in range(len(raw)):
            if self.kube.store.stopping:
                break
            self.kube.sleep(trickle)
            try:
                self.wfile.write(raw[index : index + 1])
                self.wfile.flush()
            except OSError:  # the client gave up: as a real peer, stop sending
                break
        self.close_connection = True

    def _shutdown_socket(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
