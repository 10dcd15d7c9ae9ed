"""Benchmark: CPU cost of the availability engine for one slot search.

The headline case is the one issue 3 names: a 62-day window over a provider with 500 bookings,
Europe/Berlin, two intervals a day on weekdays, a 30-minute service on a 15-minute step (goal: well
under 10 ms of CPU). It also reports how the cost grows with bookings and with the window.

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
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from loadtests.bench_transactions import REPORTS
from services.common.availability import Busy, Hours, LocalInterval, ServiceRules, free_slots

GOAL_MS = 10.0
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny repetitions, no verdict (for make test)")
    args = parser.parse_args(argv)
    repetitions = 3 if args.quick else 51

    headline, headline_slots = cpu_ms(500, 62, repetitions)
    growth = [(b, d, *cpu_ms(b, d, repetitions)) for b, d in [(100, 62), (1000, 62), (10000, 62), (500, 1), (500, 7)]]
    print("| bookings | window (days) | slots found | median CPU per search (ms) |")
    print("|---:|---:|---:|---:|")
    print(f"| 500 | 62 | {headline_slots} | **{headline:.2f}** |")
    for bookings, days, ms, slots in growth:
        print(f"| {bookings:,} | {days} | {slots} | {ms:.2f} |")
    print(f"\n62-day search over 500 bookings: {headline:.2f} ms of CPU (goal: well under {GOAL_MS:.0f} ms)")

    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = REPORTS / f"bench-slots-{stamp}{'-quick' if args.quick else ''}.json"
    rows = [{"bookings": 500, "days": 62, "slots": headline_slots, "cpuMs": round(headline, 3)}]
    rows += [{"bookings": b, "days": d, "slots": s, "cpuMs": round(ms, 3)} for b, d, ms, s in growth]
    report.write_text(
        json.dumps({"measuredAt": stamp, "quick": args.quick, "goalMs": GOAL_MS, "results": rows}, indent=2)
    )
    print(f"written to {report}")
    return 0 if args.quick or headline < GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
