"""Benchmark: bookings per second through the local stack, as a ratio to the raw throughput of the same
DynamoDB requests sent straight to the emulator.

One local stack of its own, two sets of providers made through its API (open every day, UTC). Each
booking goes to a provider-day of its own, so no two bookings race for a day's version and what is
measured is throughput, not contention (the storm tests measure that).

- **through the stack**: `POST /bookings` with an Idempotency-Key, as clients send it, through the
  gateway, the authorizer's token check, a Lambda worker and the booking handler.
- **straight to the emulator**: the same bookings' DynamoDB requests (the idempotency read, the
  calendar query, the claim transaction) made by the booking service's own domain and store code
  (`BookingService` over `DynamoDBBookingStore`) from this process, with the same number of client
  threads, on the other set of providers. No gateway, no token check, no function, no handler.

The two sides alternate in rounds, so the table's growth and the audit consumer, which follows the
stream throughout, weigh on both alike. The ratio (stack ÷ raw) is what the local stack's own layers
leave of the emulator's throughput.

    python -m loadtests.bench_throughput          # part of `make bench`
    python -m loadtests.bench_throughput --quick  # a few bookings (part of `make test`)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loadtests.load import Api, create_fixture, local_stack, stage_token

if TYPE_CHECKING:
    from local.stack import LocalStack

Cell = tuple[str, str, str]  # provider id, service id, start


@dataclass
class Side:
    name: str
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        latencies = sorted(self.latencies_ms)
        count = len(latencies)
        return {
            "side": self.name,
            "bookings": count,
            "seconds": round(self.seconds, 2),
            "bookingsPerSecond": round(count / self.seconds, 2) if self.seconds else 0.0,
            "medianMs": round(statistics.median(latencies), 1) if latencies else None,
            "p95Ms": round(latencies[int(0.95 * (count - 1))], 1) if latencies else None,
        }


def cells(fixture: dict[str, Any], days: int) -> list[Cell]:
    """One 09:00 UTC booking per provider-day, days 2 … days+1 from now."""
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    found = []
    for offset in range(2, days + 2):
        start = (today + timedelta(days=offset)).isoformat()
        for provider in fixture["providers"]:
            found.append((provider["providerId"], provider["services"][0]["serviceId"], start))
    return found


def through_stack(host: str, token: str) -> Callable[[Cell], None]:
    def book(cell: Cell) -> None:
        provider_id, service_id, start = cell
        body = json.dumps({"providerId": provider_id, "serviceId": service_id, "start": start}).encode()
        request = urllib.request.Request(f"{host}/bookings", data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Idempotency-Key", uuid.uuid4().hex)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        if status != 201:
            raise RuntimeError(f"POST /bookings answered {status} for {cell}")

    return book


def straight_to_emulator(endpoint: str, table: str, customer: str) -> Callable[[Cell], None]:
    """What the booking function asks of DynamoDB for one booking, and nothing else."""
    from local.stack import aws_client
    from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
    from services.booking.domain.use_cases import BookingRequest, BookingService
    from services.booking.http_models import booking_json
    from services.common.auth import Attribution, Group, Principal
    from services.common.clock import utc_now

    client = aws_client("dynamodb", endpoint)
    # One booking service per client thread, as each Lambda environment has its own (with the
    # calendars it remembers, decision 0007): what one client books, its next booking knows.
    services = threading.local()
    principal = Principal(customer, frozenset({Group.CUSTOMERS}))

    def book(cell: Cell) -> None:
        if not hasattr(services, "service"):
            services.service = BookingService(DynamoDBBookingStore(client, table), utc_now)
        service = services.service
        provider_id, service_id, start = cell
        request = BookingRequest(provider_id, service_id, datetime.fromisoformat(start), None, None)
        asked = {"providerId": provider_id, "serviceId": service_id, "start": start}
        request_hash = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
        # Attribution as a request carries it: a request id, an X-Ray trace id and span id.
        trace = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
        by = Attribution(customer, str(uuid.uuid4()), trace, uuid.uuid4().hex[:16])
        answer = service.book(principal, request, uuid.uuid4().hex, request_hash, booking_json, by)
        if answer.status != 201:
            raise RuntimeError(f"the booking service answered {answer.status} for {cell}")

    return book


def book_all(side: Side, book: Callable[[Cell], None], chunk: list[Cell], pool: ThreadPoolExecutor) -> None:
    def timed(cell: Cell) -> float:
        started = time.perf_counter()
        book(cell)
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    latencies = list(pool.map(timed, chunk))
    side.seconds += time.perf_counter() - started
    side.latencies_ms += latencies


def measure(
    providers: int, days: int, rounds: int, loads: tuple[int, ...], shared: LocalStack | None = None
) -> list[dict[str, Any]]:
    """Both sides at each load (client threads), on one stack with as many environments as the
    largest load: a row pair and the ratio per load."""
    results = []
    with local_stack("bench-throughput", shared, environments=max(loads)) as stack:
        assert stack.emulator is not None and stack.data is not None and stack.event_source_mapping is not None
        owner = Api(stack.url, stage_token(stack.url, "bench-owner", "providers"))
        customer = "bench-customer"
        token = stage_token(stack.url, customer, "customers")
        books = {
            "stack": through_stack(stack.url, token),
            "raw": straight_to_emulator(stack.emulator.endpoint, stack.data.table_name, customer),
        }
        for clients in loads:
            stack_cells = cells(create_fixture(owner, providers), days)
            raw_cells = cells(create_fixture(owner, providers), days)
            sides = {"stack": Side("through the local stack"), "raw": Side("straight to the emulator")}
            # One pool of client threads for the whole load: the raw side's booking services live
            # in its threads, as the stack's in its Lambda environments, and stay warm alike.
            with ThreadPoolExecutor(clients) as pool:
                for name, pending in (("stack", stack_cells), ("raw", raw_cells)):  # warm every worker; untimed
                    book_all(Side("warm-up"), books[name], [pending.pop() for _ in range(clients)], pool)
                size = len(stack_cells) // rounds
                for number in range(rounds):
                    for name, pending in (("raw", raw_cells), ("stack", stack_cells)):
                        stack.event_source_mapping.wait_caught_up()
                        book_all(sides[name], books[name], pending[number * size : (number + 1) * size], pool)
            stack.event_source_mapping.wait_caught_up()
            rows = [sides["stack"].row(), sides["raw"].row()]
            ratio = rows[0]["bookingsPerSecond"] / rows[1]["bookingsPerSecond"]
            results.append({"clients": clients, "rounds": rounds, "rows": rows, "ratio": round(ratio, 3)})
    return results


def run(quick: bool, shared: LocalStack | None = None) -> list[dict[str, Any]]:
    """At 1 client and at 8: 4 providers a side over 30 days, 4 rounds; quick: 2 over 3 days, 1 and 2 clients."""
    return measure(2, 3, 1, (1, 2), shared) if quick else measure(4, 30, 4, (1, 8), shared)


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| clients | bookings | side | seconds | bookings/s | median ms | p95 ms |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for result in results:
        for row in result["rows"]:
            lines.append(
                f"| {result['clients']} | {row['bookings']} | {row['side']} | {row['seconds']}"
                f" | {row['bookingsPerSecond']} | {row['medianMs']} | {row['p95Ms']} |"
            )
    lines.append("")
    lines += [
        f"{result['clients']} client(s), {result['rounds']} alternating rounds. Stack ÷ raw: **{result['ratio']:.2f}**."
        for result in results
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few bookings (for make test)")
    args = parser.parse_args(argv)
    print(markdown(run(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
