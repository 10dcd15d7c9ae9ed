"""Benchmark: does a booking-shaped TransactWriteItems slow down as the table grows?

Measures the median latency of a 10-item conditional transaction (a booking, eight claims on time,
an idempotency record) through the emulator over HTTP, with the table empty and with 20,000 items,
and reports the ratio (goal: at most 1.5). With `--compare`, it measures moto's own transaction
implementation the same way, to show what the rewrite in `local/emulator/transactions.py` buys.

    python -m loadtests.bench_transactions            # the full measurement (`make bench-transactions`)
    python -m loadtests.bench_transactions --compare  # plus unpatched moto (slow: ~15 s per transaction)
    python -m loadtests.bench_transactions --quick    # tiny sizes, no verdict: keeps the script alive in CI
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.cloudformation.provision import deploy_data_stack
from local.emulator.server import EmulatorProcess
from local.stack import aws_client

GOAL_RATIO = 1.5
REPORTS = Path(__file__).resolve().parent / "reports"


def booking_transaction(table: str) -> list[dict[str, Any]]:
    """Ten items shaped like a booking's claim: fresh keys, every item conditional."""
    booking = uuid.uuid4().hex
    items: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": table,
                "Item": {"PK": {"S": f"BOOKING#{booking}"}, "SK": {"S": "BOOKING"}, "status": {"S": "CONFIRMED"}},
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        },
        {
            "Put": {
                "TableName": table,
                "Item": {"PK": {"S": f"IDEMPOTENCY#{booking}"}, "SK": {"S": "KEY"}, "bookingId": {"S": booking}},
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        },
    ]
    for quantum in range(8):
        items.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": {"PK": {"S": f"PROVIDER#{booking}"}, "SK": {"S": f"CLAIM#{quantum:02d}"}},
                    "UpdateExpression": "ADD taken :one",
                    "ConditionExpression": "attribute_not_exists(taken) OR taken < :capacity",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":capacity": {"N": "1"}},
                }
            }
        )
    return items


def fill(dynamodb: Any, table: str, count: int) -> None:
    """Grow the table with ~200-byte items, 25 per BatchWriteItem."""
    payload = "x" * 150
    for start in range(0, count, 25):
        requests = [
            {"PutRequest": {"Item": {"PK": {"S": f"FILL#{n % 997}"}, "SK": {"S": f"{n:08d}"}, "p": {"S": payload}}}}
            for n in range(start, min(start + 25, count))
        ]
        dynamodb.batch_write_item(RequestItems={table: requests})


def median_ms(dynamodb: Any, table: str, repetitions: int) -> float:
    timings = []
    for _ in range(repetitions):
        transaction = booking_transaction(table)
        started = time.perf_counter()
        dynamodb.transact_write_items(TransactItems=transaction)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


@dataclass
class Measurement:
    implementation: str
    table_items: int
    repetitions: int
    median_ms: float


def measure(patched: bool, sizes: list[int], repetitions: int) -> list[Measurement]:
    emulator = EmulatorProcess.start(patched=patched)
    try:
        dynamodb = aws_client("dynamodb", emulator.endpoint)
        table = deploy_data_stack(dynamodb, aws_client("s3", emulator.endpoint), stage="bench").table_name
        results, filled = [], 0
        for size in sizes:
            fill(dynamodb, table, size - filled)
            filled = size
            median_ms(dynamodb, table, 2)  # warm the connection and the code paths
            implementation = "patched (local/emulator/transactions.py)" if patched else "moto 5.2.5 as released"
            results.append(
                Measurement(implementation, size, repetitions, round(median_ms(dynamodb, table, repetitions), 2))
            )
            # the warm-up and measured transactions added items too; count them
            filled += (repetitions + 2) * 10
        return results
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and no verdict (for make test)")
    parser.add_argument("--compare", action="store_true", help="also measure moto's own implementation")
    args = parser.parse_args(argv)

    sizes, repetitions = ([0, 200], 5) if args.quick else ([0, 20_000], 51)
    results = measure(True, sizes, repetitions)
    if args.compare:
        results += measure(False, sizes, 3)

    patched = [r for r in results if r.implementation.startswith("patched")]
    ratio = round(patched[-1].median_ms / patched[0].median_ms, 2)
    print("| implementation | items in table | transactions | median latency (ms) |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r.implementation} | {r.table_items:,} | {r.repetitions} | {r.median_ms:.2f} |")
    print(f"\nratio (patched, {sizes[-1]:,} items vs empty): {ratio} (goal ≤ {GOAL_RATIO})")

    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = REPORTS / f"bench-transactions-{stamp}{'-quick' if args.quick else ''}.json"
    report.write_text(
        json.dumps(
            {
                "measuredAt": stamp,
                "machine": {"python": platform.python_version(), "processor": platform.machine()},
                "quick": args.quick,
                "ratio": ratio,
                "goal": GOAL_RATIO,
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    print(f"written to {report}")
    if args.quick:
        return 0  # tiny sizes say nothing about scaling: no verdict
    return 0 if ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
