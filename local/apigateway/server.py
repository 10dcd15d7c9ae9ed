"""The local gateway on a loopback port: HTTP/1.1 in, `Gateway.handle`, HTTP out.

Every method reaches the gateway (it answers what API Gateway would, `TRACE` and inventions
included). Bodies are read fixed-length or chunked; an oversize body is read and dropped so the client
reads the 413 rather than a broken pipe; a body whose framing cannot be read is marked malformed.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.apigateway.gateway import Gateway
from local.apigateway.http_messages import HttpRequest


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: Gateway
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
        response = self.gateway.handle(request)
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
        handler = type("Handler", (_RequestHandler,), {"gateway": gateway})
        self.server = _Server((host, port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
