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

    python -m loadtests.bench_contention          # the measurement (make bench-contention; part of make bench)
    python -m loadtests.bench_contention --quick  # one small round, no verdict (part of make test)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loadtests.bench_throughput import Side, book_all, through_stack
from loadtests.load import Api, create_fixture, stage_token

GOAL = 1.5
SPACING = timedelta(minutes=45)


def measure(clients: int, rounds: int) -> dict[str, Any]:
    from local.stack import LocalStack, StackConfig

    with tempfile.TemporaryDirectory(prefix="bench-contention-") as state:
        config = StackConfig(port=0, state_dir=Path(state), echo=None, seed=False, environments=clients)
        stack = LocalStack(config)
        stack.start()
        try:
            assert stack.event_source_mapping is not None
            owner = Api(stack.url, stage_token(stack.url, "bench-owner", "providers"))
            provider = create_fixture(owner, 1)["providers"][0]
            pid, sid = provider["providerId"], provider["services"][0]["serviceId"]
            book = through_stack(stack.url, stage_token(stack.url, "bench-customer", "customers"))
            first = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=2)
            days = iter(range(0, 10_000))

            def one_day() -> list[tuple[str, str, str]]:
                day = first + timedelta(days=next(days))
                return [(pid, sid, (day + n * SPACING).isoformat()) for n in range(clients)]

            def spread() -> list[tuple[str, str, str]]:
                return [(pid, sid, (first + timedelta(days=next(days))).isoformat()) for _ in range(clients)]

            sides = {"one day": Side("one day"), "spread": Side("spread over days")}
            with ThreadPoolExecutor(clients) as pool:
                book_all(Side("warm-up"), book, spread(), pool)  # every worker warm; not timed
                for _ in range(rounds):
                    for name, cells in (("spread", spread()), ("one day", one_day())):
                        stack.event_source_mapping.wait_caught_up()
                        book_all(sides[name], book, cells, pool)
        finally:
            stack.stop()
    rows = [sides["one day"].row(), sides["spread"].row()]
    ratio = rows[0]["medianMs"] / rows[1]["medianMs"]
    return {"clients": clients, "rounds": rounds, "rows": rows, "ratio": round(ratio, 2), "goal": GOAL}


def run(quick: bool) -> dict[str, Any]:
    """10 clients, 6 rounds a side; quick: 3 clients, one round."""
    return measure(3, 1) if quick else measure(10, 6)


def markdown(result: dict[str, Any]) -> str:
    lines = ["| bookings | side | median ms | p95 ms |", "|---:|---|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['bookings']} | {row['side']} | {row['medianMs']} | {row['p95Ms']} |")
    lines += [
        "",
        f"{result['clients']} bookings at once, {result['rounds']} alternating rounds. One day ÷ spread:"
        f" **{result['ratio']:.2f}** (goal ≤ {result['goal']}).",
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
