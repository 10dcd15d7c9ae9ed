"""The local gateway on a loopback port: HTTP/1.1 in, `Gateway.handle`, HTTP out.

Only for this machine: a request whose `Host` is not `127.0.0.1:<port>` or `localhost:<port>` is
refused (403) before anything runs. Listening on loopback is not enough: a web page the developer
opens can point a name it controls at 127.0.0.1 (DNS rebinding) and have the browser send it requests
here, which could mint an admin token or change the faults; its requests carry that name as `Host`.

Every method reaches the gateway (it answers what API Gateway would, `TRACE` and inventions
included). Bodies are read fixed-length or chunked; an oversize body is read and dropped so the client
reads the 413 rather than a broken pipe; a body whose framing cannot be read is marked malformed.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.apigateway.gateway import Gateway
from local.apigateway.http_messages import HttpRequest, HttpResponse, problem_response


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: Gateway
    port: int  # the port it listens on, known once bound
    protocol_version = "HTTP/1.1"
    server_version = "appointments-local-gateway"

    def _serve(self) -> None:
        malformed = False
        try:
            body, length = self._read_body()
        except ValueError:
            body, length, malformed = b"", 0, True
            self.close_connection = True  # the rest of the stream cannot be trusted
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            malformed=malformed,
            wire_length=length,
        )
        response = self._foreign_host() or self.gateway.handle(request)
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client left before its answer (a load test stopping, a closed tab): nothing to tell it.
            self.close_connection = True

    def _foreign_host(self) -> HttpResponse | None:
        """A 403 for a request addressed to any name but this machine's loopback (see above)."""
        host = (self.headers.get("Host") or "").strip().lower()
        port = self.port
        if host in {f"127.0.0.1:{port}", f"localhost:{port}"}:
            return None
        self.close_connection = True
        return problem_response(
            403, "Forbidden", "FORBIDDEN_HOST",
            f"The local stack answers only requests to 127.0.0.1:{port} or localhost:{port}, not {host or 'no Host'}.",
        )  # fmt: skip

    def _read_body(self) -> tuple[bytes, int]:
        """The request body (fixed-length or chunked) and its length; an oversize body is read and dropped."""
        limit = self.gateway.max_body_bytes
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length <= limit:
            return (self.rfile.read(length) if length else b""), length
        # Drain it so the client reads the 413 instead of a broken pipe; the gateway refuses it.
        remaining = length
        while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 20))):
            remaining -= len(chunk)
        return b"", length

    def _read_chunked(self, limit: int) -> tuple[bytes, int]:
        parts: list[bytes] = []
        total = 0
        while (size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"x", 16)) > 0:
            chunk = self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk
            total += size
            if total <= limit:
                parts.append(chunk)
        while self.rfile.readline(1024).strip():  # trailers, up to the blank line
            pass
        return (b"".join(parts) if total <= limit else b""), total

    def __getattr__(self, name: str) -> Any:
        # Every method, TRACE and inventions included, reaches the gateway: it answers what API Gateway would.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the gateway writes its own access log."""


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 resets connections when many clients arrive at once
    request_queue_size = 128


class GatewayServer:
    """The gateway on a loopback port, serving on a background thread."""

    def __init__(self, gateway: Gateway, port: int, host: str = "127.0.0.1") -> None:
        handler: type[_RequestHandler] = type("Handler", (_RequestHandler,), {"gateway": gateway})
        self.server = _Server((host, port), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        handler.port = self.port
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
