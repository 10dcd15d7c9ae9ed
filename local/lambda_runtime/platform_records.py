"""The records Lambda writes into a function's log stream around each invocation.

In the function's log format: text (`START RequestId: …`, `END …`, `REPORT …` with its tab-separated
figures) or, when `LoggingConfig.LogFormat` is JSON, the `platform.start`, `platform.runtimeDone` and
`platform.report` events of the Telemetry API's shape. One record is the local stack's own, and says
so: an invocation that waited for a free environment (`LOCAL … Queued:`, or `local.queued`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass
class Report:
    """The figures Lambda's REPORT line carries."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None
    status: str = "success"


def start_lines(log_format: str, request_id: str, now: float | None = None) -> list[str]:
    if log_format == "JSON":
        record = {"requestId": request_id, "version": "$LATEST"}
        return [json.dumps({"time": _iso_now(now), "type": "platform.start", "record": record})]
    return [f"START RequestId: {request_id} Version: $LATEST"]


def report_lines(log_format: str, report: Report, now: float | None = None) -> list[str]:
    if log_format == "JSON":
        metrics: dict[str, Any] = {
            "durationMs": report.duration_ms,
            "billedDurationMs": report.billed_duration_ms,
            "memorySizeMB": report.memory_size_mb,
            "maxMemoryUsedMB": report.max_memory_used_mb,
        }
        if report.init_duration_ms is not None:
            metrics["initDurationMs"] = report.init_duration_ms
        runtime_done = {"requestId": report.request_id, "status": report.status}
        record = {"requestId": report.request_id, "metrics": metrics, "status": report.status}
        return [
            json.dumps({"time": _iso_now(now), "type": "platform.runtimeDone", "record": runtime_done}),
            json.dumps({"time": _iso_now(now), "type": "platform.report", "record": record}),
        ]
    line = (
        f"REPORT RequestId: {report.request_id}\tDuration: {report.duration_ms:.2f} ms\t"
        f"Billed Duration: {report.billed_duration_ms} ms\tMemory Size: {report.memory_size_mb} MB\t"
        f"Max Memory Used: {report.max_memory_used_mb} MB"
    )
    if report.init_duration_ms is not None:
        line += f"\tInit Duration: {report.init_duration_ms:.2f} ms"
    if report.status != "success":
        line += f"\tStatus: {report.status}"
    return [f"END RequestId: {report.request_id}", line]


def queued_line(log_format: str, request_id: str, waited_ms: float, environments: int, now: float | None = None) -> str:
    """A local record, before START, of an invocation that waited for a free environment: Lambda would
    have started another one; this machine runs at most `environments` worker processes per function."""
    if log_format == "JSON":
        record = {"requestId": request_id, "queuedMs": round(waited_ms, 2), "localEnvironments": environments}
        return json.dumps({"time": _iso_now(now), "type": "local.queued", "record": record})
    return (
        f"LOCAL RequestId: {request_id}\tQueued: {waited_ms:.2f} ms\t"
        f"(all {environments} local environments were busy; Lambda would have started another)"
    )


def timeout_line(request_id: str, message: str, now: float | None = None) -> str:
    """The line Lambda writes when an invocation outlives the function's timeout."""
    return f"{_iso_now(now)} {request_id} {message}"


def _iso_now(now: float | None = None) -> str:
    """`now` is the local stack's clock (`local/clock.py`), else the machine's time."""
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
