"""Benchmark: CPU cost of one slot search, from DynamoDB's answer to the slots.

The headline case is the one issue 3 names: a 62-day window over a provider with 500 bookings,
Europe/Berlin, two intervals a day on weekdays, a 30-minute service on a 15-minute step. Issue 19
asks for what a search costs with its parsing: the Query's pages as DynamoDB sends them (JSON bytes)
parsed by botocore, the items turned into the calendar (`calendar_table.calendar_from`), and the
engine (`availability.free_slots`); goal under 10 ms. It also reports the engine alone, and how both
grow with bookings (to 10,000, where the partition passes DynamoDB's 1 MB page) and with the window.

    python -m loadtests.bench_slots          # the measurement (`make bench-slots`)
    python -m loadtests.bench_slots --quick  # tiny repetitions, no verdict (part of `make test`)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from loadtests.bench_transactions import REPORTS
from local.emulator.capacity import item_size
from services.common import keys, query_items
from services.common.availability import Busy, Hours, LocalInterval, ServiceRules, free_slots
from services.common.calendar import BookedSpan
from services.common.calendar_table import calendar_from, span_of
from services.common.dynamodb import to_item

GOAL_MS = 10.0
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
PROVIDER_ID, SERVICE_ID = "prv_" + "b" * 32, "svc_" + "b" * 32


def scenario(bookings: int, days: int, seed: int = 7) -> tuple[Hours, ServiceRules, list[Busy], datetime, datetime]:
    """`bookings` spread over the next 62 days; a search window of `days`."""
    weekly = {day: (LocalInterval(8 * 60, 12 * 60 + 30), LocalInterval(14 * 60, 18 * 60)) for day in range(5)}
    hours = Hours(ZoneInfo("Europe/Berlin"), weekly, {})
    rules = ServiceRules(30, 5, 10, 60, 90, 15, 1)
    generator = random.Random(seed)
    busy = []
    for _ in range(bookings):
        start = NOW + timedelta(minutes=15 * generator.randrange(0, 62 * 96))
        busy.append(Busy(start, start + timedelta(minutes=45)))
    return hours, rules, busy, NOW, NOW + timedelta(days=days)


def cpu_ms(bookings: int, days: int, repetitions: int) -> tuple[float, int]:
    """Median CPU milliseconds of one search, and how many slots it found."""
    hours, rules, busy, start, end = scenario(bookings, days)
    timings, found = [], 0
    for _ in range(repetitions):
        before = time.process_time()
        found = len(free_slots(hours, rules, busy, start, end, NOW))
        timings.append((time.process_time() - before) * 1000)
    return statistics.median(timings), found


PAGE_BYTES = 1024 * 1024  # DynamoDB ends a Query page at 1 MB of items


@dataclass(frozen=True)
class Partition:
    """A provider's partition as the slot search's Query returns it: its pages, as DynamoDB sends
    them over the wire, and how many items and bytes they hold."""

    pages: list[bytes]
    items: int
    item_bytes: int


def partition(bookings: int, days: int) -> Partition:
    """The scenario's provider as the table holds it: its profile, hours and service, written by the
    availability service's own store (in-process moto), and its bookings' busy blocks (each span in
    every 30-minute block it touches, as the booking service writes them), up to the window's end."""
    hours, rules, busy, _, end = scenario(bookings, days)
    config = _config_items(hours, rules)
    blocks: dict[datetime, dict[str, Any]] = {}
    for index, span in enumerate(busy):
        booked = BookedSpan(f"bkg_{index:048d}", SERVICE_ID, f"customer-{index}", span.start, span.start, span.end, 1,
                            "2026-03-01T00:00:00Z")  # fmt: skip
        for block in keys.busy_blocks(span.start, span.end):
            blocks.setdefault(block, {})[booked.booking_id] = span_of(booked)
    _, high = keys.slot_query_range(end)
    items = list(config)
    for block, spans in sorted(blocks.items()):
        key = keys.busy_block_key(PROVIDER_ID, block)
        if key["SK"]["S"] > high:
            continue  # beyond what the Query reads
        expires = int((block + timedelta(days=3)).timestamp())
        values = {"entityType": "BusyBlock", "expiresAt": expires, "spans": spans, "version": len(spans)}
        items.append({**key, **to_item(values)})
    pages: list[list[dict[str, Any]]] = []
    page: list[dict[str, Any]] = []
    size = total = 0
    for item in items:
        page.append(item)
        size += item_size(item)
        total += item_size(item)
        if size >= PAGE_BYTES:
            pages.append(page)
            page, size = [], 0
    pages.append(page)
    wire = []
    for number, page in enumerate(pages):
        answer: dict[str, Any] = {"Count": len(page), "ScannedCount": len(page), "Items": page}
        if number < len(pages) - 1:
            answer["LastEvaluatedKey"] = {"PK": page[-1]["PK"], "SK": page[-1]["SK"]}
        wire.append(json.dumps(answer, separators=(",", ":")).encode())  # compact, as DynamoDB sends it
    return Partition(wire, len(items), total)


def _config_items(hours: Hours, rules: ServiceRules) -> list[dict[str, Any]]:
    """The provider's profile, schedule and service, written by the availability service's store."""
    import boto3
    from moto import mock_aws

    from deploy.templates import TEMPLATES, load_template, resources_of_type
    from local.cloudformation.provision import create_table
    from local.cloudformation.resolver import resolver_for
    from services.availability.adapters.dynamodb_store import DynamoDBProviderStore as AvailabilityStore
    from services.common.auth import Attribution
    from services.common.calendar import Provider, Service

    by = Attribution("bench", "bench", "")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        template = load_template(TEMPLATES / "data.yaml")
        table = resources_of_type(template, "AWS::DynamoDB::Table")["Table"]
        properties = resolver_for(template, {"Stage": "bench"}).resolve(table["Properties"])
        name = create_table(client, properties)["TableName"]
        store = AvailabilityStore(client, name, lambda: NOW)
        created = "2026-03-01T00:00:00Z"
        store.create_provider(Provider(PROVIDER_ID, "Bench", hours.time_zone.key, "owner", 1, created), by)
        store.save_schedule(PROVIDER_ID, {day: tuple(hours.weekly[day]) for day in hours.weekly}, None, by)
        store.create_service(Service(SERVICE_ID, PROVIDER_ID, "Visit", rules, 1, created), by)
        found = client.query(
            TableName=name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": keys.provider_key(PROVIDER_ID)["PK"]},
        )
        return [dict(item) for item in found["Items"]]


@cache
def _query_output() -> tuple[Any, Any]:
    """botocore's parser of DynamoDB's JSON protocol and the Query operation's output shape."""
    import botocore.session
    from botocore.parsers import create_parser

    model = botocore.session.get_session().get_service_model("dynamodb")
    return create_parser(model.metadata["protocol"]), model.operation_model("Query").output_shape


def search_with_parsing(wire: Partition, days: int, *, items_as_sent: bool = True) -> int:
    """One slot search from the Query's pages, as the services' client makes it: each page handed to
    the `before-parse` hook the client has (services/common/query_items.py), then to botocore's parser
    (with `items_as_sent=False`: botocore parses the items too, as a plain client would), the calendar
    built from the items, the search; the number of slots found."""
    parser, shape = _query_output()
    items: list[dict[str, Any]] = []
    for page in wire.pages:
        response: dict[str, Any] = {"status_code": 200, "headers": {}, "body": page}
        customized: dict[str, Any] = {}
        if items_as_sent:
            query_items.items_as_sent(response_dict=response, customized_response_dict=customized)
        parsed = parser.parse(response, shape)
        parsed.update(customized)
        items.extend(parsed["Items"])
    calendar = calendar_from(items, NOW.date().isoformat())
    assert calendar is not None
    service = calendar.services[SERVICE_ID]
    end = NOW + timedelta(days=days)
    return len(free_slots(calendar.hours(), service.rules, calendar.busy_at(NOW), NOW, end, NOW, SERVICE_ID))


def with_parsing_ms(
    bookings: int, days: int, repetitions: int, *, items_as_sent: bool = True
) -> tuple[float, int, Partition]:
    """Median CPU milliseconds of one search with its parsing, the slots found, and the partition."""
    wire = partition(bookings, days)
    found = search_with_parsing(wire, days, items_as_sent=items_as_sent)  # warm-up at the measured size
    timings = []
    for _ in range(repetitions):
        before = time.process_time()
        found = search_with_parsing(wire, days, items_as_sent=items_as_sent)
        timings.append((time.process_time() - before) * 1000)
    return statistics.median(timings), found, wire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny repetitions, no verdict (for make test)")
    args = parser.parse_args(argv)
    repetitions = 3 if args.quick else 51

    engine = [
        (b, d, *cpu_ms(b, d, repetitions))
        for b, d in [(500, 62), (100, 62), (1000, 62), (10000, 62), (500, 1), (500, 7)]
    ]
    print("The engine alone (the busy spans already in memory):\n")
    print("| bookings | window (days) | slots found | median CPU per search (ms) |")
    print("|---:|---:|---:|---:|")
    for bookings, days, ms, slots in engine:
        print(f"| {bookings:,} | {days} | {slots} | {ms:.2f} |")

    sizes = [500, 100, 1000, 2000, 5000, 10000]
    parsed = [(b, *with_parsing_ms(b, 62, repetitions)) for b in sizes]
    print("\nWith its parsing (the Query's pages as sent, botocore's parser, the calendar, the engine), 62 days:\n")
    print("| bookings | Query pages | items | item bytes | slots found | median CPU per search (ms) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for bookings, ms, slots, wire in parsed:
        print(f"| {bookings:,} | {len(wire.pages)} | {wire.items:,} | {wire.item_bytes:,} | {slots} | {ms:.2f} |")
    headline = parsed[0][1]
    whole, _, _ = with_parsing_ms(500, 62, repetitions, items_as_sent=False)
    print(f"\nThe same 500 bookings with botocore parsing the items too (no before-parse hook): {whole:.2f} ms")

    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = REPORTS / f"bench-slots-{stamp}{'-quick' if args.quick else ''}.json"
    rows = [{"bookings": b, "days": d, "slots": s, "cpuMs": round(ms, 3), "parsing": False} for b, d, ms, s in engine]
    rows += [
        {"bookings": b, "days": 62, "slots": s, "cpuMs": round(ms, 3), "parsing": True, "pages": len(w.pages),
         "items": w.items, "itemBytes": w.item_bytes}
        for b, ms, s, w in parsed
    ]  # fmt: skip
    report.write_text(
        json.dumps({"measuredAt": stamp, "quick": args.quick, "goalMs": GOAL_MS, "results": rows}, indent=2)
    )
    print(f"\nwritten to {report}")
    print(f"62 days × 500 bookings, with parsing: {headline:.2f} ms (goal: under {GOAL_MS:.0f} ms)")  # noqa: RUF001
    return 0 if args.quick or headline < GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
