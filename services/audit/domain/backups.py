"""Backups of the stage's two tables as DynamoDB exports to S3, and the drill that proves them
(decision 0032).

Pure: where an export goes and under which idempotency token, how old the newest good export is, and
what a restore is checked against. The AWS calls are in `adapters/dynamodb_exports.py`; the Lambda
function that exports daily and measures hourly is `backup_handler.py`; the drill is `backup.py`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from msgspec import Struct, field

EXPORTS = "exports"  # the backup bucket's prefix for exports: exports/<table>/AWSDynamoDB/<export id>/…
MAX_AGE = timedelta(hours=26)  # the alarm's line: a daily export, with two hours to run and be late

Item = dict[str, Any]  # an item in DynamoDB JSON ({"PK": {"S": "…"}, …}), as exports and Scans hold it


def export_prefix(table_name: str) -> str:
    return f"{EXPORTS}/{table_name}"


def client_token(table_name: str, day: date, hour: int) -> str:
    """One export per table per six hours of a UTC day, however often the hourly schedule (or a retry)
    asks: DynamoDB answers the same export for a ClientToken used again within 8 hours. So a day's
    export that failed is tried again in the next six hours, and at most four run a day even if
    ListExports did not show the ones in progress."""
    return hashlib.sha256(f"{table_name}/{day.isoformat()}/{hour // 6}".encode()).hexdigest()[:32]


class ExportState(Struct, frozen=True):
    """One export, as DescribeExport answers it."""

    table_arn: str
    arn: str
    status: str  # IN_PROGRESS, COMPLETED or FAILED
    started: datetime
    export_time: datetime | None
    failure: str | None = None


def due_today(exports: Iterable[ExportState], today: date) -> bool:
    """Whether today's export is still to start: none of today's (UTC) is done or running. The
    hourly schedule asks every hour, so the first run of each day exports."""
    return not any(e.status in {"COMPLETED", "IN_PROGRESS"} and e.started.date() == today for e in exports)


class Freshness(Struct, frozen=True):
    """What the hourly check measures: the age of the newest completed export of the table whose newest
    is oldest, and each table's newest export when it failed (counted every hour until one succeeds)."""

    age: timedelta
    failed: tuple[ExportState, ...]
    stalest_table: str

    @property
    def overdue(self) -> bool:
        return self.age > MAX_AGE


def freshness(created: Mapping[str, datetime], exports: Iterable[ExportState], now: datetime) -> Freshness:
    """The backup's age is its weakest table's: a restore needs both tables of one moment. A table
    never exported counts from its creation (`created`, by table ARN): all its data is unprotected."""
    exports = list(exports)
    newest = {}
    for export in sorted(exports, key=lambda e: e.started):
        newest[export.table_arn] = export
    failed = tuple(export for _, export in sorted(newest.items()) if export.status == "FAILED")
    ages: dict[str, timedelta] = {}
    for table_arn, made in created.items():
        done = [e.export_time for e in exports if e.table_arn == table_arn and e.status == "COMPLETED"]
        times = [at for at in done if at is not None]
        ages[table_arn] = now - (max(times) if times else made)
    stalest = max(ages, key=lambda table_arn: ages[table_arn])
    return Freshness(ages[stalest], failed, stalest)


# The drill's checks --------------------------------------------------------------------------------


def item_key(item: Mapping[str, Any]) -> str:
    return f"{_text(item.get('PK'))}/{_text(item.get('SK'))}"


def _text(value: Any) -> str:
    if isinstance(value, Mapping) and len(value) == 1:
        return str(next(iter(value.values())))
    return "" if value is None else str(value)


def entity_type(item: Mapping[str, Any]) -> str:
    return _text(item.get("entityType")) or "(none)"


def counts_by_type(items: Iterable[Mapping[str, Any]]) -> Counter[str]:
    return Counter(entity_type(item) for item in items)


class DataFile(Struct, frozen=True):
    """One data file of an export, as the manifest lists it and as S3 holds it."""

    key: str
    listed_items: int
    listed_md5: str
    actual_md5: str
    items: tuple[Item, ...]
    unreadable: str | None = None  # why its lines could not be read


def file_problems(files: Iterable[DataFile], summary_items: int) -> list[str]:
    """The export against its own manifest: each file's checksum and count, and the total."""
    problems, total = [], 0
    for data in files:
        total += len(data.items)
        if data.unreadable:
            problems.append(f"export file {data.key}: {data.unreadable}")
            continue
        if data.actual_md5 != data.listed_md5:
            problems.append(f"export file {data.key}: its MD5 is not the manifest's (changed after the export)")
        if len(data.items) != data.listed_items:
            problems.append(f"export file {data.key}: {len(data.items)} items, the manifest lists {data.listed_items}")
    if total != summary_items:
        problems.append(f"export: {total} items in its files, its summary counts {summary_items}")
    return problems


class Comparison(Struct):
    """A restore against the truth of the same moment (the table restored to the export's time with
    point-in-time recovery), item by item."""

    equal: int = 0
    altered: list[str] = field(default_factory=list)  # key (the differing attributes)
    missing: list[str] = field(default_factory=list)  # in the truth, not in the restore
    extra: list[str] = field(default_factory=list)  # in the restore, not in the truth

    @property
    def problems(self) -> list[str]:
        return (
            [f"altered: {entry}" for entry in self.altered]
            + [f"missing from the restore: {key}" for key in self.missing]
            + [f"not in the table at the export's time: {key}" for key in self.extra]
        )


def compare(truth: Mapping[str, Item], restored: Mapping[str, Item]) -> Comparison:
    """Every item of both, by key and field by field. Both are the table at one moment, so every
    difference is the export's (or the import's): nothing is excused."""
    result = Comparison()
    for key, expected in truth.items():
        found = restored.get(key)
        if found == expected:
            result.equal += 1
        elif found is None:
            result.missing.append(key)
        else:
            differing = sorted(name for name in found.keys() | expected.keys() if found.get(name) != expected.get(name))
            result.altered.append(f"{key} ({', '.join(differing)})")
    result.extra = sorted(restored.keys() - truth.keys())
    result.missing.sort()
    result.altered.sort()
    return result
