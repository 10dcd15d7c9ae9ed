"""Benchmark: do bookings of different times on one provider's day wait for each other?

One local stack of its own, one provider (open 08:00-18:00 UTC, a 30-minute visit with a 5-minute
buffer after, on a 15-minute step). Each round sends the same number of bookings at once, as that
many clients, two ways:

- **one day**: different times of one day, as close as they can be without overlapping (every 45
  minutes: 35 busy minutes each, on the 15-minute grid), which is a clinic's Monday morning;
- **spread**: the same time of day on as many different days.

Both sides make the same requests through the gateway, the token check, a worker and the booking
handler; only the times differ. The ratio of their median latencies (one day ÷ spread) is what
sharing a day costs a booking (issue 19: the goal is ≤ 1.5, the aim 1.1). The sides alternate, and
each round uses days nobody booked before.

Latency on two shared cores moves from run to run (six rounds gave 0.75 to 1.89), so the measure runs
12 rounds a side, reports beside the ratio of the pooled medians the median of the rounds' own
ratios (each pair of rounds ran back to back, on the machine as it was then), and counts what does
not move: the booking function's DynamoDB requests per
booking on each side (the emulator's meter, local/emulator/capacity.py), and how many of its
transactions were cancelled. Those say how much of the one-day side's time is contention by design:
bookings 45 minutes apart share a 30-minute block (08:00-08:35 and 08:45-09:20 both touch 08:30), so
neighbours that commit at once cancel each other's transaction, and the loser reads again (decision
0007).

    python -m loadtests.bench_contention          # the measurement (make bench-contention; part of make bench)
    python -m loadtests.bench_contention --quick  # one small round, no verdict (part of make test)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loadtests.bench_throughput import Side, book_all, through_stack
from loadtests.load import SERVICES, Api, create_fixture, local_stack, stage_token

if TYPE_CHECKING:
    from local.stack import LocalStack

GOAL = 1.5
QUICK_CLIENTS = 3
SPACING = timedelta(minutes=45)


def measure(clients: int, rounds: int, shared: LocalStack | None = None) -> dict[str, Any]:
    with local_stack("bench-contention", shared, environments=clients) as stack:
        assert stack.event_source_mapping is not None and stack.data is not None
        owner = Api(stack.url, stage_token(stack.url, "bench-owner", "providers"))
        pid = create_fixture(owner, 1)["providers"][0]["providerId"]
        # Bookable a year ahead: every round takes days nobody booked (11 a round at 10 clients).
        status, service = owner("POST", f"/providers/{pid}/services", SERVICES[0] | {"maxAdvanceDays": 365})
        if status != 201:
            raise RuntimeError(f"creating the service: {status} {service}")
        sid = service["serviceId"]
        book = through_stack(stack.url, stage_token(stack.url, "bench-customer", "customers"))
        first = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=2)
        days = iter(range(0, 10_000))

        def one_day() -> list[tuple[str, str, str]]:
            day = first + timedelta(days=next(days))
            return [(pid, sid, (day + n * SPACING).isoformat()) for n in range(clients)]

        def spread() -> list[tuple[str, str, str]]:
            return [(pid, sid, (first + timedelta(days=next(days))).isoformat()) for _ in range(clients)]

        sides = {"one day": Side("one day"), "spread": Side("spread over days")}
        requests = {name: Requests() for name in sides}
        pairs: list[float] = []
        with ThreadPoolExecutor(clients) as pool:
            book_all(Side("warm-up"), book, spread(), pool)  # every worker warm; not timed
            for _ in range(rounds):
                for name, cells in (("spread", spread()), ("one day", one_day())):
                    stack.event_source_mapping.wait_caught_up()
                    metered(stack.url)  # what came before is not this side's
                    book_all(sides[name], book, cells, pool)
                    requests[name].add(metered(stack.url), stack.data.table_name)
                # Each round's pair ran back to back, on the machine as it was then.
                pairs.append(round_median(sides["one day"], clients) / round_median(sides["spread"], clients))
    rows = [sides[name].row() | requests[name].row(len(sides[name].latencies_ms)) for name in ("one day", "spread")]
    ratio = rows[0]["medianMs"] / rows[1]["medianMs"]
    return {
        "clients": clients,
        "rounds": rounds,
        "rows": rows,
        "ratio": round(ratio, 2),
        "roundRatios": [round(pair, 2) for pair in pairs],
        "medianRoundRatio": round(statistics.median(pairs), 2),
        "goal": GOAL,
    }


def round_median(side: Side, clients: int) -> float:
    """The median latency of the side's last round."""
    return statistics.median(side.latencies_ms[-clients:])


class Requests:
    """The booking function's DynamoDB requests on the table during one side's rounds."""

    def __init__(self) -> None:
        self.requests = 0
        self.cancelled = 0

    def add(self, ledger: list[dict[str, Any]], table: str) -> None:
        for request in ledger:
            # The audit consumer writes its own table and reads nothing of the bookings' by Query.
            if request["table"] == table and request["operation"] in {"Query", "TransactWriteItems"}:
                self.requests += 1
                self.cancelled += request["failed"] and request["operation"] == "TransactWriteItems"

    def row(self, bookings: int) -> dict[str, Any]:
        return {
            "requestsPerBooking": round(self.requests / bookings, 2),
            "cancelledPerBooking": round(self.cancelled / bookings, 2),
        }


def metered(url: str) -> list[dict[str, Any]]:
    """The emulator's requests since the last call (then cleared)."""
    with urllib.request.urlopen(f"{url}/_local/capacity", timeout=30) as answer:
        ledger: list[dict[str, Any]] = json.load(answer)["requests"]
    urllib.request.urlopen(urllib.request.Request(f"{url}/_local/capacity", method="DELETE"), timeout=30).close()
    return ledger


def run(quick: bool, shared: LocalStack | None = None) -> dict[str, Any]:
    """10 clients, 12 rounds a side; quick: 3 clients, one round."""
    return measure(QUICK_CLIENTS, 1, shared) if quick else measure(10, 12, shared)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| bookings | side | median ms | p95 ms | DynamoDB requests per booking | cancelled transactions per booking |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['bookings']} | {row['side']} | {row['medianMs']} | {row['p95Ms']}"
            f" | {row['requestsPerBooking']} | {row['cancelledPerBooking']} |"
        )
    lines += [
        "",
        f"{result['clients']} bookings at once, {result['rounds']} alternating rounds. One day ÷ spread:"
        f" **{result['ratio']:.2f}** (goal ≤ {result['goal']}); round by round, the median of"
        f" {len(result['roundRatios'])} ratios: {result['medianRoundRatio']:.2f}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small round, no verdict (for make test)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
