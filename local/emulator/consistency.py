"""Eventually consistent reads, on demand: the `staleReadsMs` fault (`make faults STALE_READS_MS=…`).

moto answers every read with the latest write; DynamoDB answers an eventually consistent read (every
GSI query, and a GetItem, Query, Scan or BatchGetItem that does not ask for `ConsistentRead`) with
data that may be a moment old. Code that reads its own write that way works locally and fails, now
and then, on AWS. With the fault on, such a read answers with the worst DynamoDB allows: each item
as it was `staleReadsMs` ago, and no item that did not exist then. Strongly consistent reads and
transactions are untouched.

A journal of the writes' before-images while the fault is on (the capacity meter sees them, inside
the emulator's lock) is what makes the past answerable. One thing it does not do: re-add to a query or scan an item
deleted within the window. Answering without it is answering with the current state, which DynamoDB
may do too, so the emulation never says what AWS could not.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from local.emulator.faults import Replay

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
READS = {"GetItem", "Query", "Scan", "BatchGetItem"}
KEEP_SECONDS = 30.0  # the longest staleness the fault allows


class ReadConsistency:
    """A WSGI layer inside the emulator's lock, outside the capacity meter."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self.staleness_ms = 0
        self._journal: deque[tuple[float, str, str, dict[str, Any] | None]] = deque()  # at, table, key, before
        self._keys: dict[str, tuple[str, ...]] = {}  # table → its key attributes, learnt from the writes
        self._lock = threading.Lock()

    def written(self, backend: Any, keys: list[tuple[str, str]], before: dict[tuple[str, str], Any]) -> None:
        """The capacity meter's report of a write: the (table, key JSON) pairs it wrote and each item
        before (a moto Item or None). Journaled only while the fault is on: writes cost nothing more
        otherwise, and a write from before the fault is answered as it is now, which DynamoDB may too."""
        if not self.staleness_ms:
            return
        now = time.time()
        with self._lock:
            for table_name, key_json in keys:
                table = backend.tables.get(table_name)
                if table is None:
                    continue
                attributes = tuple(name for name in (table.hash_key_attr, table.range_key_attr) if name)
                self._keys[table_name] = attributes
                key = _key_json(json.loads(key_json), attributes)
                self._journal.append((now, table_name, key, _attributes(before[(table_name, key_json)])))
            while self._journal and self._journal[0][0] < now - KEEP_SECONDS:
                self._journal.popleft()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        operation = target.split(".", 1)[1] if target.startswith("DynamoDB_20120810.") else ""
        if not self.staleness_ms or operation not in READS:
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = Replay(body)
        request = json.loads(body or b"{}")
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            captured[:] = [status, list(headers)]

        answer = b"".join(self._app(environ, capture))
        status, headers = captured
        if status.startswith("2"):
            stale = self._stale(operation, request, json.loads(answer or b"{}"))
            if stale is not None:
                answer = json.dumps(stale).encode()
                # botocore checks DynamoDB's x-amz-crc32: both must describe the new body.
                headers = [(k, v) for k, v in headers if k.lower() not in {"content-length", "x-amz-crc32"}]
                headers += [("Content-Length", str(len(answer))), ("x-amz-crc32", str(zlib.crc32(answer)))]
        start_response(status, headers)
        return [answer]

    def _stale(self, operation: str, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any] | None:
        """The response as an eventually consistent read may answer it, or None to leave it."""
        if operation == "BatchGetItem":
            changed = False
            for table, items in response.get("Responses", {}).items():
                if not request.get("RequestItems", {}).get(table, {}).get("ConsistentRead"):
                    response["Responses"][table] = self._as_of([(table, item) for item in items])
                    changed = True
            return response if changed else None
        table = str(request.get("TableName", ""))
        if request.get("ConsistentRead") and not request.get("IndexName"):
            return None
        if operation == "GetItem":
            found = self._version(table, request.get("Key", {}), response.get("Item"))
            if found is None:
                response.pop("Item", None)
            else:
                response["Item"] = found
            return response
        items = self._as_of([(table, item) for item in response.get("Items", [])])
        response["Items"] = items
        response["Count"] = len(items)
        return response

    def _as_of(self, items: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        versions = [self._version(table, item, item) for table, item in items]
        return [version for version in versions if version is not None]

    def _version(self, table: str, key: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any] | None:
        """The item as it was `staleness_ms` ago: the before-image of its first write since then."""
        cutoff = time.time() - self.staleness_ms / 1000
        with self._lock:
            attributes = self._keys.get(table)
            if attributes is None:
                return current
            wanted = _key_json(key, attributes)
            for at, journal_table, journal_key, before in self._journal:
                if at > cutoff and journal_table == table and journal_key == wanted:
                    return before
        return current


def _key_json(item: dict[str, Any], attributes: tuple[str, ...]) -> str:
    return json.dumps({name: item.get(name) for name in attributes}, sort_keys=True)


def _attributes(item: Any) -> dict[str, Any] | None:
    """A moto Item as the wire's attribute map."""
    return None if item is None else dict(item.to_json()["Attributes"])
