"""DynamoDB capacity units for the emulator, computed from item sizes as DynamoDB bills them.

moto answers `ReturnConsumedCapacity` with a constant (1 or 0.5 units, whatever the items), so the
emulator works the units out itself. `CapacityMeter` wraps moto inside the emulator's one-request-
at-a-time lock, so it sees the table as it was just before and just after each request:

- **Reads**: 4 KB units of what was read, rounded up: per item for GetItem, BatchGetItem and
  TransactGetItems, over the whole page for Query and Scan (and before any FilterExpression: DynamoDB
  bills what it reads, not what it returns). Eventually consistent reads cost half; transactional
  reads double.
- **Writes**: 1 KB units of the larger of the item before and after, rounded up, at least 1. A
  conditional write that fails is billed too. Transactions double every item, ConditionCheck
  included (billed as a write of the item it checks: the conservative reading of the docs).
- **Global secondary indexes**: a write that changes what an index holds writes the projected item
  there too: a put for a new or changed entry, a delete for a removed one, both when its index key
  changes. Index writes are not doubled.

Each request is recorded as a `Consumption` with its `X-Amzn-Trace-Id`, which botocore sends from
`_X_AMZN_TRACE_ID` inside a function, and the function that made it (botocore's User-Agent names it:
`AWS_SDK_UA_APP_ID`, which the local runtime sets), so `GET /_capacity` (the stack's
`/_local/capacity`) lets the benchmarks add the units up per API request, leaving out the functions
that hear of its change and continue its trace. When a client asks for `ReturnConsumedCapacity`, the
computed total replaces moto's constant. See docs/decisions/0015-dynamodb-capacity-metering.md.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from local.emulator.faults import Replay, table_of

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
LEDGER_SIZE = 100_000
REGION = re.compile(r"Credential=[^/]+/\d+/([^/]+)/dynamodb/")
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READS = frozenset({"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"})


@dataclass(frozen=True)
class Consumption:
    """One DynamoDB request's units: reads and writes on tables, writes on their indexes."""

    operation: str
    table: str
    trace_id: str
    read_units: float
    write_units: float
    index_write_units: float
    failed: bool
    caller: str = ""  # the function that made it (its User-Agent's `app/<name>`), "" when not one of ours


def item_size(attributes: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: each attribute's name (UTF-8 bytes) plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in attributes.items())


def value_size(value: dict[str, Any]) -> int:
    """One attribute value's bytes by DynamoDB's published rules (moto's own sizes leave out the 3-byte
    document overhead and the byte per element that lists and maps cost)."""
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return _binary_size(content)
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "SS":
        return sum(len(member.encode()) for member in content)
    if kind == "NS":
        return sum(_number_size(member) for member in content)
    if kind == "BS":
        return sum(_binary_size(member) for member in content)
    if kind == "L":
        return 3 + sum(1 + value_size(member) for member in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(member) for name, member in content.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


def _binary_size(content: str | bytes) -> int:
    """A binary value's bytes. moto keeps one as the base64 text of the request or as the bytes
    themselves, depending on the operation that wrote it (an UpdateItem's SET keeps bytes); a text
    that is not base64 is counted as it stands rather than failing the request (a 500)."""
    if isinstance(content, bytes):
        return len(content)
    try:
        return len(base64.b64decode(content, validate=True))
    except binascii.Error:
        return len(content.encode("utf-8", "surrogateescape"))


def _number_size(text: str) -> int:
    """A byte per two significant digits, plus one: leading and trailing zeros do not count."""
    digits = text.lstrip("+-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return math.ceil(max(len(digits), 1) / 2) + 1


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units * 2 if transactional else units if consistent else units / 2


def write_units(size: int, *, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / WRITE_UNIT_BYTES))
    return units * 2 if transactional else units


class CapacityMeter:
    """A WSGI wrapper around moto that records the capacity each DynamoDB request consumes."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.ledger: deque[Consumption] = deque(maxlen=LEDGER_SIZE)  # the latest requests, for the benchmarks
        self.totals: dict[str, dict[str, float]] = {}  # table → units since start, for the local metrics
        # (moto's backend, the written (table, key JSON) pairs, the items before) after each successful write
        self.write_listeners: list[Callable[[Any, list[tuple[str, str]], dict[tuple[str, str], Any]], None]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/_capacity":  # `?totals` leaves the requests out
            return self._report(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        operation = target.split(".", 1)[1] if target.startswith("DynamoDB_20120810.") else ""
        if operation not in READS | WRITES:
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        request = json.loads(body or b"{}")
        table = table_of(request)
        region_match = REGION.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][region_match.group(1) if region_match else "us-east-1"]
        keys = _written_keys(operation, request)
        # A copy: moto updates items in place, and the units depend on the item before and after.
        before = {key: copy.deepcopy(_stored(backend, *key)) for key in keys}
        status, headers, answer = self._forward(environ, body)
        failed = not status.startswith("2")
        response = json.loads(answer or b"{}") if answer else {}
        if operation in WRITES:
            after = {key: _stored(backend, *key) for key in keys}
            units = _write_consumption(backend, operation, keys, before, after)
            if not failed:
                for listener in self.write_listeners:
                    listener(backend, keys, before)
            consumption = Consumption(
                operation, table, _trace(environ), 0.0, units[0], units[1], failed, _caller(environ)
            )
        else:
            scanned = self._scanned(environ, operation, request, response)
            read = _read_consumption(operation, request, scanned)
            consumption = Consumption(operation, table, _trace(environ), read, 0.0, 0.0, failed, _caller(environ))
        with self._lock:
            self.ledger.append(consumption)
            totals = self.totals.setdefault(table, {"read": 0.0, "write": 0.0})
            totals["read"] += consumption.read_units
            totals["write"] += consumption.write_units + consumption.index_write_units
        if not failed and request.get("ReturnConsumedCapacity", "NONE") != "NONE":
            answer = json.dumps(_with_capacity(operation, request, response, consumption)).encode()
            # botocore checks DynamoDB's x-amz-crc32 and retries on a mismatch: both describe the new body.
            headers = [
                (name, value) for name, value in headers if name.lower() not in {"content-length", "x-amz-crc32"}
            ]
            headers += [("Content-Length", str(len(answer))), ("x-amz-crc32", str(zlib.crc32(answer)))]
        start_response(status, headers)
        return [answer]

    def _forward(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run the request through moto; answer its status, headers and whole body."""
        environ["wsgi.input"] = Replay(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            captured[:] = [status, headers]

        answer = b"".join(self._app(environ, capture))
        return captured[0], list(captured[1]), answer

    def _scanned(
        self, environ: dict[str, Any], operation: str, request: dict[str, Any], response: dict[str, Any]
    ) -> list[list[dict[str, Any]]]:
        """The items each read touched, per request item (one list per GetItem-like unit of billing)."""
        if operation == "GetItem":
            return [[response["Item"]] if "Item" in response else []]  # a miss still costs the minimum
        if operation == "TransactGetItems":
            return [[r["Item"]] if "Item" in r else [] for r in response.get("Responses", [])]
        if operation == "BatchGetItem":
            return [[item] for items in response.get("Responses", {}).values() for item in items]
        if "FilterExpression" not in request and request.get("Select") != "COUNT":
            return [response.get("Items", [])]
        # Billed before the filter: ask again for the same page without it.
        unfiltered = {k: v for k, v in request.items() if k not in {"FilterExpression", "Select"}}
        if "ExpressionAttributeValues" in unfiltered or "ExpressionAttributeNames" in unfiltered:
            unfiltered = _drop_unused_expression_names(unfiltered)
        data = json.dumps(unfiltered).encode()
        _, _, answer = self._forward(dict(environ), data)
        return [json.loads(answer or b"{}").get("Items", [])]

    def _report(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.ledger.clear()
            report: dict[str, Any] = {"totals": self.totals}
            if environ.get("QUERY_STRING") != "totals":
                report["requests"] = [asdict(c) for c in self.ledger]
            body = json.dumps(report).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _caller(environ: dict[str, Any]) -> str:
    found = re.search(r"(?:^|\s)app/(\S+)", str(environ.get("HTTP_USER_AGENT", "")))
    return found.group(1) if found else ""


def _trace(environ: dict[str, Any]) -> str:
    header = str(environ.get("HTTP_X_AMZN_TRACE_ID", ""))
    return next((part[5:] for part in header.split(";") if part.startswith("Root=")), "")


def _written_keys(operation: str, request: dict[str, Any]) -> list[tuple[str, str]]:
    """(table, key as JSON) of every item a write request names, in request order."""
    if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
        return [(request["TableName"], json.dumps(request.get("Key") or request.get("Item"), sort_keys=True))]
    found: list[tuple[str, str]] = []
    if operation == "TransactWriteItems":
        for entry in request.get("TransactItems", []):
            for action in entry.values():
                found.append((action["TableName"], json.dumps(action.get("Key") or action.get("Item"), sort_keys=True)))
    if operation == "BatchWriteItem":
        for table, entries in request.get("RequestItems", {}).items():
            for entry in entries:
                found.append(
                    (
                        table,
                        json.dumps(
                            entry.get("DeleteRequest", {}).get("Key") or entry.get("PutRequest", {}).get("Item"),
                            sort_keys=True,
                        ),
                    )
                )
    return found


def _stored(backend: Any, table_name: str, key_json: str) -> Item | None:
    table: Table = backend.get_table(table_name)
    given = json.loads(key_json)
    keys = {name: given[name] for name in (table.hash_key_attr, table.range_key_attr) if name and name in given}
    try:
        return backend.get_item(table_name, keys)
    except (JsonRESTError, KeyError):  # no such table or a malformed key: the request failed too
        return None


def _write_consumption(
    backend: Any,
    operation: str,
    keys: list[tuple[str, str]],
    before: dict[tuple[str, str], Item | None],
    after: dict[tuple[str, str], Item | None],
) -> tuple[float, float]:
    transactional = operation == "TransactWriteItems"
    table_units = index_units = 0.0
    for key in keys:
        old, new = before[key], after[key]
        size = max(_size(old), _size(new))
        table_units += write_units(size, transactional=transactional)
        for index in backend.get_table(key[0]).global_indexes:
            index_units += _index_writes(index, old, new)
    return table_units, index_units


def _size(item: Item | None) -> int:
    return item_size(item.to_json()["Attributes"]) if item is not None else 0


def _index_writes(index: Any, old: Item | None, new: Item | None) -> float:
    def entry(item: Item | None) -> Item | None:
        if item is None or not all(name in item.attrs for name in index.schema_key_attrs):
            return None
        return index.project(item)

    was, now = entry(old), entry(new)
    if was is None and now is None:
        return 0.0
    if was is None or now is None:
        return write_units(_size(now or was))
    if all(was.attrs[name] == now.attrs[name] for name in index.schema_key_attrs):
        return write_units(_size(now)) if was.to_json() != now.to_json() else 0.0
    return write_units(_size(was)) + write_units(_size(now))  # the entry moves: a delete and a put


def _read_consumption(operation: str, request: dict[str, Any], scanned: list[list[dict[str, Any]]]) -> float:
    transactional = operation == "TransactGetItems"
    consistent = bool(request.get("ConsistentRead"))
    if operation in {"Query", "Scan"}:
        size = sum(item_size(item) for item in scanned[0])
        return read_units(size, consistent=consistent)
    return sum(
        read_units(sum(item_size(item) for item in items), consistent=consistent, transactional=transactional)
        for items in scanned
    )


def _with_capacity(
    operation: str, request: dict[str, Any], response: dict[str, Any], consumption: Consumption
) -> dict[str, Any]:
    total = consumption.read_units + consumption.write_units + consumption.index_write_units
    capacity = {"TableName": consumption.table, "CapacityUnits": total}
    if operation.startswith("Transact") or operation.startswith("Batch"):
        return {**response, "ConsumedCapacity": [capacity]}
    return {**response, "ConsumedCapacity": capacity}


def _drop_unused_expression_names(request: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB refuses expression names and values no remaining expression uses."""
    used = " ".join(str(request.get(k, "")) for k in ("KeyConditionExpression", "ProjectionExpression"))
    trimmed = dict(request)
    for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        if field in trimmed:
            kept = {k: v for k, v in trimmed[field].items() if re.search(re.escape(k) + r"\b", used)}
            if kept:
                trimmed[field] = kept
            else:
                del trimmed[field]
    return trimmed
