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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

EXPORTS = "exports"  # the backup bucket's prefix for exports: exports/<table>/AWSDynamoDB/<export id>/…
MAX_AGE = timedelta(hours=26)  # the alarm's line: a daily export, with two hours to run and be late
# Changes this close before an export's time may or may not be in it: DynamoDB's point in time and
# the writer's `updatedAt` come from different clocks, and a write takes its time to commit.
SETTLE = timedelta(minutes=1)

Item = dict[str, Any]  # an item in DynamoDB JSON ({"PK": {"S": "…"}, …}), as exports and Scans hold it


def export_prefix(table_name: str) -> str:
    return f"{EXPORTS}/{table_name}"


def client_token(table_name: str, day: date, attempt: int = 0) -> str:
    """One export per table per UTC day, however often the schedule (or a retry) asks: DynamoDB keeps
    a ClientToken 8 hours, and answers the same export for it. A day's export that failed is tried
    again under the next attempt's token."""
    return hashlib.sha256(f"{table_name}/{day.isoformat()}/{attempt}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ExportState:
    """One export, as DescribeExport answers it."""

    table_arn: str
    arn: str
    status: str  # IN_PROGRESS, COMPLETED or FAILED
    started: datetime
    export_time: datetime | None
    failure: str | None = None


def attempt_due(exports: Iterable[ExportState], today: date) -> int | None:
    """The attempt to start for a table today, or None when today's export is done or running: the
    hourly schedule asks every hour, so the first hour of each UTC day (or after a failure) exports."""
    started_today = [e for e in exports if e.started.date() == today]
    if any(e.status in {"COMPLETED", "IN_PROGRESS"} for e in started_today):
        return None
    return sum(1 for e in started_today if e.status == "FAILED")


@dataclass(frozen=True)
class Freshness:
    """What the hourly check measures: the age of the newest completed export of the table whose newest
    is oldest, and the exports that failed since the last check."""

    age: timedelta
    failed: tuple[ExportState, ...]
    stalest_table: str

    @property
    def overdue(self) -> bool:
        return self.age > MAX_AGE


def freshness(
    created: Mapping[str, datetime], exports: Iterable[ExportState], now: datetime, since: datetime
) -> Freshness:
    """The backup's age is its weakest table's: a restore needs both tables of one moment. A table
    never exported counts from its creation (`created`, by table ARN): all its data is unprotected."""
    exports = list(exports)
    failed = tuple(e for e in exports if e.status == "FAILED" and e.started >= since)
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


@dataclass(frozen=True)
class DataFile:
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


@dataclass
class Comparison:
    """The restored table against the live one, item by item."""

    equal: int = 0
    altered: list[str] = field(default_factory=list)  # key: the differing attributes
    missing: list[str] = field(default_factory=list)  # in the live table, unchanged since, not restored
    extra: list[str] = field(default_factory=list)  # restored, unknown to the live table and not deleted since
    changed_since: int = 0  # changed or created in the live table after the export: not comparable
    gone_since: int = 0  # restored, and deleted from the live table since (or expired)

    @property
    def problems(self) -> list[str]:
        return (
            [f"altered: {entry}" for entry in self.altered]
            + [f"missing from the restore: {key}" for key in self.missing]
            + [f"not in the table: {key}" for key in self.extra]
        )


def compare(
    live: Mapping[str, Item], restored: Mapping[str, Item], export_time: datetime, *, quiet: bool = False
) -> Comparison:
    """Every item of the export's moment: equal in both, or a difference the live table explains (a
    change after the export, by its `updatedAt`; a deletion since, which leaves no trace to read, so
    it is only counted). `quiet`: nothing wrote to the table since the export (the drill's own local
    stack), so a restored item the table lacks is a problem too."""
    result = Comparison()
    cutoff = export_time - SETTLE
    for key, now in live.items():
        before = restored.get(key)
        if before == now:
            result.equal += 1
        elif _changed_after(now, cutoff):
            result.changed_since += 1
        elif before is None:
            result.missing.append(key)
        else:
            differing = sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))
            result.altered.append(f"{key} ({', '.join(differing)})")
    for key in restored.keys() - live.keys():
        if quiet and not _expired(restored[key], export_time):
            result.extra.append(key)
        else:
            result.gone_since += 1
    result.missing.sort()
    result.altered.sort()
    result.extra.sort()
    return result


def _changed_after(item: Mapping[str, Any], cutoff: datetime) -> bool:
    updated = _text(item.get("updatedAt"))
    if not updated:
        return False  # no time to judge by: compared as it stands
    try:
        return datetime.fromisoformat(updated.replace("Z", "+00:00")) >= cutoff
    except ValueError:
        return False


def _expired(item: Mapping[str, Any], at: datetime) -> bool:
    expires = _text(item.get("expiresAt"))
    return bool(expires) and float(expires) <= at.timestamp()
