"""The local X-Ray daemon: what Lambda's daemon is to a function with active tracing.

A UDP endpoint on loopback for segment documents (a `{"format": "json", "version": 1}` header line,
then the document), which the functions' workers reach through `AWS_XRAY_DAEMON_ADDRESS`. It keeps the
documents in memory, by trace, for `GET /_local/traces?traceId=…` and the tests, and appends each to
`logs/traces.log` (one JSON line per span) so a trace can be read with grep and jq.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_TRACES = 5000  # a laptop's worth; the oldest traces are forgotten first


class XRayDaemon:
    def __init__(self, log_path: Path) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._log = log_path.open("a", encoding="utf-8")
        self._traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()
        self.received = 0
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # e.g. the metric store
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="xray-daemon", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def start(self) -> XRayDaemon:
        self._thread.start()
        return self

    def stop(self) -> None:
        # Closing a UDP socket does not wake a thread blocked receiving on it (Linux): a datagram to
        # itself does, and the loop sees it is stopping.
        self._stopping.set()
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wake:
            wake.sendto(b"", self._socket.getsockname())
        self._thread.join(timeout=5)
        self._socket.close()
        self._log.close()

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Every document received for one trace (`1-…-…`), in arrival order."""
        with self._lock:
            return list(self._traces.get(trace_id, []))

    def traces(self) -> dict[str, list[dict[str, Any]]]:
        """Every trace kept, oldest first, each with its documents in arrival order."""
        with self._lock:
            return {trace_id: list(documents) for trace_id, documents in self._traces.items()}

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [document for documents in self._traces.values() for document in documents]

    def _receive(self) -> None:
        while True:
            try:
                datagram = self._socket.recv(65_535)
            except OSError:
                return
            if self._stopping.is_set():
                return
            header, _, body = datagram.partition(b"\n")
            try:
                if json.loads(header).get("format") != "json":
                    continue
                document = json.loads(body)
            except ValueError:
                continue  # the daemon drops what it cannot read; so does this one
            with self._lock:
                if len(self._traces) >= MAX_TRACES and document.get("trace_id") not in self._traces:
                    self._traces.pop(next(iter(self._traces)))
                self._traces[str(document.get("trace_id"))].append(document)
                self.received += 1
                self._log.write(json.dumps(document, separators=(",", ":")) + "\n")
                self._log.flush()
            for listener in self.listeners:
                listener(document)
