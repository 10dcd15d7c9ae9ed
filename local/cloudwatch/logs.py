"""CloudWatch Logs as the local stack keeps it: each function's log group, and its lines as events.

`LogStreams` is one function's log group: every environment's lines (the handler's output and
Lambda's platform records), in one file under the stack's `logs/` and in a buffer of recent lines
that listeners (the metric store, reading EMF) see as they are written. `LogEvent` is one line as
CloudWatch Logs stores it, with the fields Logs Insights discovers in it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from local.account import ACCOUNT_ID

Value = str | float | int | bool | None


class LogStreams:
    """A function's log group: lines from every environment, in one file and a recent-lines buffer."""

    def __init__(self, path: Path, keep: int = 5000, now: Callable[[], float] = time.time) -> None:
        self.path = path
        self._now = now  # the stack's clock: Logs Insights windows are in its time
        self.recent: deque[tuple[float, str, str]] = deque(maxlen=keep)
        self.listeners: list[Callable[[str], None]] = []  # e.g. the metric store, reading EMF lines
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, stream: str, line: str) -> None:
        with self._lock:
            if self._file.closed:  # an invocation that outlived its function's shutdown: nobody reads it
                return
            self.recent.append((self._now(), stream, line))
            self._file.write(line + "\n")
        for listener in self.listeners:
            listener(line)

    def lines(self) -> list[tuple[float, str, str]]:
        """The recent lines as (time, log stream, text), oldest first."""
        with self._lock:
            return list(self.recent)

    def close(self) -> None:
        with self._lock:
            self._file.close()


@dataclass(frozen=True)
class LogEvent:
    """One line of a log group, as CloudWatch Logs stores it."""

    timestamp: float  # seconds since the epoch
    log_group: str
    log_stream: str
    message: str

    def fields(self) -> dict[str, Value]:
        """The event's fields: the system fields and, for a JSON line, its keys flattened with dots."""
        found: dict[str, Value] = {
            "@timestamp": int(self.timestamp * 1000),
            "@message": self.message,
            "@log": f"{ACCOUNT_ID}:{self.log_group}",
            "@logStream": self.log_stream,
        }
        text = self.message.strip()
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except ValueError:
                return found
            if isinstance(document, dict):
                _flatten(document, "", found)
        return found


def _flatten(document: Mapping[str, Any], prefix: str, into: dict[str, Value]) -> None:
    for key, value in document.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", into)
        elif isinstance(value, list):
            into[f"{prefix}{key}"] = json.dumps(value)
        else:
            into[f"{prefix}{key}"] = value
