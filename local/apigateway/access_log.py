"""API Gateway's access log: one JSON line per request, in the fields its access logging offers.

The format is the stage's `AccessLogSetting` (`cloudformation/api.yaml`); each line goes to the file
(the log group), to whoever listens (the metric store turns lines into API Gateway's metrics) and,
when asked, to the console of `make run`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from local.apigateway.http_messages import HttpRequest, HttpResponse


class AccessLog:
    def __init__(
        self,
        path: Path | None = None,
        *,
        echo: Callable[[str], None] | None = None,
        on_access: Callable[[dict[str, Any]], None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._echo = echo
        self._now = now
        self._on_access = on_access  # e.g. the metric store: API Gateway's metrics from each request
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(
        self, request: HttpRequest, response: HttpResponse, request_id: str, resource: str, latency_ms: float
    ) -> None:
        record = {
            "requestId": request_id,
            "ip": request.source_ip,
            "requestTime": datetime.fromtimestamp(self._now(), UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "httpMethod": request.method,
            "resourcePath": resource,
            "path": urlsplit(request.target).path,
            "status": response.status,
            "protocol": request.protocol,
            "responseLength": len(response.body),
            "responseLatency": round(latency_ms, 2),
            "integrationLatency": round(response.integration_latency_ms, 2)
            if response.integration_latency_ms is not None
            else None,
            "integrationStatus": response.integration_status,
            "errorMessage": response.error_message,
            "userAgent": request.header("user-agent"),
            "sub": response.sub,
        }
        line = json.dumps(record)
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
        if self._on_access is not None:
            self._on_access(record)
        if self._echo is not None:
            self._echo(line)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
