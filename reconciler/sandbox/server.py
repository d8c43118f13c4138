"""The sandbox over HTTP: a threading HTTP/1.1 server on loopback, one thread per connection.

The standard library's server, speaking HTTP/1.1 with keep-alive, so a pooled httpx client
behaves against it as it does against Lofty. Bounds: a request body over `MAX_BODY_BYTES` is
refused (413) without being read, as is a chunked one (411); an idle keep-alive connection is
closed after `IDLE_TIMEOUT` seconds; once a request's first byte has arrived, a watchdog closes
the connection if the request is not answered within `SandboxConfig.request_timeout`, so no
client can hold a handler thread forever. Every answer, errors included, is JSON.

Each request is logged as one line (method, path, status, milliseconds) to the `log` callable
the caller passes; the path is escaped (`sanitize.clean`, the tool's one escaper), so a request
cannot put control characters in a log.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from reconciler.sandbox.api import DROP, NOT_FOUND, Api, Headers, Reply, Request
from reconciler.sandbox.config import SandboxConfig
from reconciler.sanitize import clean

MAX_BODY_BYTES = 1024 * 1024
IDLE_TIMEOUT = 120.0  # seconds an idle keep-alive connection stays open

Log = Callable[[str], None]
_METHOD = re.compile(r"[A-Z]{1,16}")


class HttpServer(ThreadingHTTPServer):
    """The listening socket, a thread per connection, and the watchdog over stalled requests."""

    daemon_threads = True
    # Benchmarks open 10-20 connections at once; a short backlog would make some wait a full
    # SYN retransmit (a second) before they are even accepted.
    request_queue_size = 128

    def __init__(self, config: SandboxConfig, api: Api, log: Log | None) -> None:
        self.config = config
        self.api = api
        self._log = log
        self._log_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._deadlines: dict[socket.socket, float] = {}
        self._connections_lock = threading.Lock()
        self._stopping = threading.Event()
        host = "127.0.0.1" if config.host == "localhost" else config.host
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._watchdog = threading.Thread(target=self._watch, name="sandbox-watchdog", daemon=True)
        super().__init__((host, config.port), _Handler)  # closes itself if it cannot bind
        self._watchdog.start()

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server_port}"

    def log_line(self, line: str) -> None:
        if self._log is not None:
            with self._log_lock:  # one whole line at a time from many handler threads
                self._log(line)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
            self._deadlines.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections, so their threads and clients notice the stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            _hang_up(connection)

    def server_close(self) -> None:
        self._stopping.set()
        super().server_close()
        if self._watchdog.ident is not None:
            self._watchdog.join()

    def begin(self, connection: socket.socket) -> None:
        """A request has started on this connection: it must be answered within the timeout."""
        with self._connections_lock:
            self._deadlines[connection] = time.monotonic() + self.config.request_timeout

    def end(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._deadlines.pop(connection, None)

    def _watch(self) -> None:
        """Close connections whose request has outlived its deadline (a stalled client)."""
        while not self._stopping.wait(min(0.25, self.config.request_timeout / 4)):
            now = time.monotonic()
            with self._connections_lock:
                overdue = [c for c, deadline in self._deadlines.items() if deadline <= now]
                for connection in overdue:
                    del self._deadlines[connection]
            for connection in overdue:
                _hang_up(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is ordinary; anything else is a bug worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def _hang_up(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already gone
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from Lofty
    disable_nagle_algorithm = True  # headers and body are separate writes; don't delay the body
    timeout = IDLE_TIMEOUT
    # A request line without a version is answered as HTTP/1.0, with a status line and headers
    # (HTTP/0.9 would send the JSON body alone).
    default_request_version = "HTTP/1.0"
    _started = 0.0

    def handle_one_request(self) -> None:
        # Wait for the next request's first byte under the idle timeout; from then on the whole
        # request (line, headers, body, answer) runs under the watchdog's deadline.
        try:
            if not self.rfile.peek(1):  # type: ignore[attr-defined]
                self.close_connection = True
                return
        except OSError:  # idle for too long, or reset
            self.close_connection = True
            return
        self._started = time.perf_counter()
        self.server.begin(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.end(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default log; `_log` writes one escaped line per request instead."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (bad request line, 501, ...), as JSON like every other."""
        self.close_connection = True
        reason = message or self.responses.get(code, ("Error",))[0]
        self._send(Reply(code, {"code": code, "message": reason}))

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        target = _split(self.path)
        if target is None:
            self._send(Reply(400, {"code": 400, "message": "Bad Request"}))
            return
        request = Request(
            method=self.command,
            path=target.path,
            query=parse_qs(target.query, keep_blank_values=True),
            authorization=self.headers.get("Authorization"),
            body=body,
        )
        if target.path.startswith("/v1.0/"):
            self._api(request)
        elif target.path.startswith("/_sandbox/"):
            self._send(self.server.api.admin(request))
        else:
            self._send(NOT_FOUND)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(Reply(411, {"code": 411, "message": "Length Required"}))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the rest of the stream cannot be trusted
            self._send(Reply(413, {"code": 413, "message": "Payload Too Large"}))
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client hung up, or the watchdog did
            self.close_connection = True
            self._log("incomplete")
            return None
        return body

    def _api(self, request: Request) -> None:
        api = self.server.api
        api.arrive()
        if self.server.config.latency_ms:
            time.sleep(self.server.config.latency_ms / 1000)
        reply, limit_headers = api.handle(request)
        api.answered(reply)
        if reply is DROP:
            self.close_connection = True
            self._log("dropped")
            return
        self._send(reply, limit_headers)

    def _send(self, reply: Reply, extra_headers: Headers = ()) -> None:
        payload = json_bytes(reply.body)
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (*extra_headers, *reply.headers):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self._log(str(reply.status))

    def _log(self, outcome: str) -> None:
        method = self.command if _METHOD.fullmatch(self.command or "") else "-"
        raw = getattr(self, "path", "") or ""  # unset when the request line was unreadable
        target = _split(raw)
        path = clean(raw if target is None else target.path) or "-"
        elapsed = round((time.perf_counter() - self._started) * 1000)
        self.server.log_line(f"{method} {path} {outcome} {elapsed}ms")


def json_bytes(body: object) -> bytes:
    """A body as compact JSON (ASCII-only, so every client decodes it alike)."""
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def _split(target: str) -> SplitResult | None:
    """A request target's parts, or None when it is not a URL at all (`http://[x`)."""
    try:
        return urlsplit(target)
    except ValueError:
        return None
