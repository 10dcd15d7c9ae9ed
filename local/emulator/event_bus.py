"""EventBridge `PutEvents` in the emulator: AWS's refusals, injected entry failures, and a journal of
what each bus accepted, which the local stack's rules (local/eventbridge/) deliver from.

moto stores events and routes them to some targets, but never invokes a Lambda function, and never
fails an entry. This layer sits in front of it:

- a call with no entries or more than 10, or whose entries total 256 KB or more (each entry counted
  as EventBridge counts it: Source, DetailType, Detail, Resources, 14 bytes for Time), is refused
  whole with a `ValidationException`, as AWS refuses it;
- the `eventsPutFailure` fault (`/_faults`) fails that share of entries with `ErrorCode`
  `InternalFailure` while the others go through: the partial failure every PutEvents caller must
  retry entry by entry (`FailedEntryCount`);
- every entry moto accepts is appended to the journal with the `EventId` moto gave it, in order:
  `GET /_events?after=<seq>` answers the entries after that sequence number.
"""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from local.emulator.faults import Replay

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MAX_ENTRIES = 10
MAX_BYTES = 256 * 1024
JOURNAL_SIZE = 100_000  # entries kept for readers; a reader this far behind has stopped


class EventBusTap:
    def __init__(self, app: WSGIApp, seed: int | None = None) -> None:
        self._app = app
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.failure_share = 0.0  # set from the fault plan's eventsPutFailure
        self.injected = 0
        self._journal: deque[dict[str, Any]] = deque(maxlen=JOURNAL_SIZE)
        self._sequence = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/_events":
            return self._read_journal(environ, start_response)
        if environ.get("HTTP_X_AMZ_TARGET") == "AWSEvents.PutEvents":
            return self._put_events(environ, start_response)
        return self._app(environ, start_response)

    def _put_events(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        entries: list[dict[str, Any]] = request.get("Entries") or []
        if not 1 <= len(entries) <= MAX_ENTRIES:
            return _refuse(start_response, f"Entries: 1 to {MAX_ENTRIES} entries a call, not {len(entries)}")
        if sum(entry_size(entry) for entry in entries) >= MAX_BYTES:
            return _refuse(start_response, "Total size of the entries in the request is over the limit.")
        with self._lock:
            share = self.failure_share
            failed = {i for i in range(len(entries)) if share and self._random.random() < share}
            self.injected += len(failed)
        passed = [entry for i, entry in enumerate(entries) if i not in failed]
        accepted: list[dict[str, Any]] = []
        if passed:
            status, headers, body = self._forward(environ, {**request, "Entries": passed})
            if not status.startswith("200"):
                start_response(status, headers)
                return [body]
            accepted = json.loads(body)["Entries"]
        results: list[dict[str, Any]] = []
        answers = iter(accepted)
        for index, entry in enumerate(entries):
            if index in failed:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "Injected fault"})
                continue
            result = next(answers)
            results.append(result)
            if "EventId" in result:
                self._record(entry, result["EventId"])
        answer = {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}
        return _json(start_response, "200 OK", answer)

    def _forward(self, environ: dict[str, Any], request: dict[str, Any]) -> tuple[str, list[Any], bytes]:
        body = json.dumps(request).encode()
        forwarded = {**environ, "wsgi.input": Replay(body), "CONTENT_LENGTH": str(len(body))}
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], *_: Any) -> None:
            answer.update(status=status, headers=headers)

        payload = b"".join(self._app(forwarded, capture))
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        return answer["status"], [*headers, ("Content-Length", str(len(payload)))], payload

    def _record(self, entry: dict[str, Any], event_id: str) -> None:
        with self._lock:
            self._sequence += 1
            self._journal.append(
                {
                    "sequence": self._sequence,
                    "eventId": event_id,
                    "eventBusName": str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1],
                    "source": entry.get("Source"),
                    "detailType": entry.get("DetailType"),
                    "detail": entry.get("Detail"),
                    "resources": entry.get("Resources") or [],
                    "traceHeader": entry.get("TraceHeader"),
                    # The emulator's clock is the stack's (local/emulator/clock.py).
                    "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )

    def _read_journal(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        after = int(parse_qs(str(environ.get("QUERY_STRING", ""))).get("after", ["0"])[0] or 0)
        with self._lock:
            events = [event for event in self._journal if event["sequence"] > after]
            answer = {"events": events, "last": self._sequence, "injectedFailures": self.injected}
        return _json(start_response, "200 OK", answer)


def entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it against the 256 KB."""
    size = 14 if entry.get("Time") else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name) or "").encode())
    return size + sum(len(str(resource).encode()) for resource in entry.get("Resources") or [])


def _refuse(start_response: Callable[..., Any], message: str) -> list[bytes]:
    return _json(start_response, "400 Bad Request", {"__type": "ValidationException", "message": message})


def _json(start_response: Callable[..., Any], status: str, answer: dict[str, Any]) -> list[bytes]:
    body = json.dumps(answer).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))])
    return [body]
