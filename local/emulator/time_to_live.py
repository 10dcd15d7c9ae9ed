"""DynamoDB's time to live: items whose TTL attribute has passed are deleted, by DynamoDB itself.

moto stores a table's TTL setting and never expires anything. Here a sweeper runs every 2 seconds
inside the emulator's one-request-at-a-time lock and deletes every item whose TTL attribute (the one
the table's `TimeToLiveSpecification` names, a Number of epoch seconds) is in the past, on the
emulator's time, which the local stack's clock moves (`local/clock.py`). So an expired item is gone
within 10 s of the clock passing it, where DynamoDB takes up to a few days: code must not rely on
either. As in DynamoDB:

- a value that is not a Number, or more than five years in the past, never expires the item;
- the deletion is a `REMOVE` record on the stream whose `userIdentity` is
  `{"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}` (Lambda delivers it as
  `{"type": …, "principalId": …}`), so a stream consumer can tell it from a delete someone made;
- it consumes no capacity (it bypasses the capacity meter, which sees only requests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from moto.dynamodb.models import dynamodb_backends

SWEEP_SECONDS = 2.0
FIVE_YEARS = 5 * 365 * 24 * 3600
DELETED_BY_TTL = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}  # as GetRecords names it


def sweep() -> int:
    """Delete every expired item of every table with TTL on; answers how many went. Hold the lock."""
    now = time.time()
    deleted = 0
    for regions in dynamodb_backends.values():
        for backend in regions.values():
            for table in list(backend.tables.values()):
                if table.ttl.get("TimeToLiveStatus") != "ENABLED":
                    continue
                attribute = table.ttl["AttributeName"]
                for item in [item for item in _items(table) if _expired(item, attribute, now)]:
                    key = {table.hash_key_attr: item.hash_key.to_json()}
                    if table.range_key_attr is not None and item.range_key is not None:
                        key[table.range_key_attr] = item.range_key.to_json()
                    backend.delete_item(table.name, key)
                    if table.stream_shard is not None and table.stream_shard.items:
                        table.stream_shard.items[-1].record["userIdentity"] = dict(DELETED_BY_TTL)
                    deleted += 1
    return deleted


def _items(table: Any) -> Iterator[Any]:
    """The table's items in no order: moto's `all_items` sorts the table, too slow every 2 s."""
    for stored in table.items.values():
        if table.range_key_attr:
            yield from stored.values()
        else:
            yield stored


def _expired(item: Any, attribute: str, now: float) -> bool:
    value = item.attrs.get(attribute)
    if value is None or value.type != "N":
        return False
    expires = float(value.value)
    return now - FIVE_YEARS <= expires < now


class Sweeper:
    """Sweeps on a background thread, under the emulator's lock, until stopped."""

    def __init__(self, lock: threading.Lock, interval: float = SWEEP_SECONDS) -> None:
        self._lock = lock
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttl-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            with self._lock:
                sweep()
