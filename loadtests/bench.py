"""`make bench`: the performance goals as numbers, written to `loadtests/reports/bench-<timestamp>/`
as `results.json`, `results.md` and PNG plots.

- **Cold start**: each function's init and first request in a fresh interpreter ÷ (`import boto3`, a
  client and the same AWS calls), AWS answered by a recorded tape, median of 7
  (loadtests/bench_cold_start.py; goal ≤ 1.5).
- **DynamoDB per API operation**: requests and capacity units per call of each operation, and per
  audited change, metered by the emulator from item sizes (loadtests/bench_capacity.py).
- **Handler CPU**: each function's CPU per request with storage faked by a recorded tape, as a ratio
  to a trivial Powertools route (loadtests/bench_handler_cpu.py).
- **Booking throughput**: bookings per second through the local stack ÷ the same bookings' DynamoDB
  requests sent straight to the emulator (loadtests/bench_throughput.py).
- **Contention**: bookings of different times of one provider's day at once ÷ the same number spread
  over days, median latency (loadtests/bench_contention.py; goal ≤ 1.5).
- **Cost**: the month's bill at 100,000 bookings, USD per million bookings, and a few volumes, priced
  from the figures above and `loadtests/prices.toml` (loadtests/cost.py).
- **Slot search growth**: CPU per search, with its parsing (the Query's pages as sent to the slots,
  loadtests/bench_slots.py), as the provider's bookings grow (100 → 10,000, 62-day window) and as
  the window grows (1 → 62 days, 500 bookings), plotted on log-log axes. It must grow linearly or
  better: the fitted slope of log(cost) against log(size) stays ≤ 1.15 (a little over 1 for the
  timer's noise).

`--quick` (part of `make test`) runs every part at tiny sizes, writes the same files, and gives no
verdict, so the script never rots.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, nothing fetched

from matplotlib import pyplot, ticker

from loadtests import (
    bench_capacity,
    bench_cold_start,
    bench_contention,
    bench_handler_cpu,
    bench_slots,
    bench_throughput,
    cost,
)
from loadtests.bench_transactions import REPORTS
from loadtests.load import local_stack

MAX_SLOPE = 1.15
BOOKINGS = [100, 300, 1_000, 3_000, 10_000]
WINDOWS = [1, 7, 14, 31, 62]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of log(y) on log(x): 1 is linear growth, below 1 better than linear."""
    xs, ys = [math.log(x) for x, _ in points], [math.log(max(y, 1e-6)) for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum((x - mean_x) ** 2 for x in xs)


def cold_start(runs: int) -> dict[str, Any]:
    return bench_cold_start.measure(runs)


def slot_growth(repetitions: int, bookings: list[int], windows: list[int]) -> dict[str, Any]:
    # What a search costs with its parsing (the Query's pages to the slots; each size warmed up first)
    by_bookings = [(b, bench_slots.with_parsing_ms(b, 62, repetitions)[0]) for b in bookings]
    by_window = [(d, bench_slots.with_parsing_ms(500, d, repetitions)[0]) for d in windows]
    return {
        "maxSlope": MAX_SLOPE,
        "byBookings": [{"bookings": b, "cpuMs": round(ms, 3)} for b, ms in by_bookings],
        "byWindowDays": [{"days": d, "cpuMs": round(ms, 3)} for d, ms in by_window],
        "slopeBookings": round(slope(by_bookings), 3),
        "slopeWindow": round(slope(by_window), 3),
    }


def plot_growth(points: list[dict[str, Any]], key: str, label: str, fitted: float, path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(6, 4), dpi=100)
    xs, ys = [p[key] for p in points], [p["cpuMs"] for p in points]
    axes.loglog(xs, ys, "o-", label=f"measured (slope {fitted:.2f})")
    linear = [ys[0] * x / xs[0] for x in xs]
    axes.loglog(xs, linear, "--", color="grey", label="linear growth from the first point")
    for axis in (axes.xaxis, axes.yaxis):  # plain numbers on the log scales
        axis.set_major_formatter(ticker.ScalarFormatter())
    axes.set_xlabel(label)
    axes.set_ylabel("CPU per slot search (ms, median)")
    axes.set_title(f"Slot search cost by {label}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def plot_cold_start(result: dict[str, Any], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(7, 3.5), dpi=100)
    names = [row["function"] for row in result["rows"]]
    axes.barh(names, [row["ratio"] for row in result["rows"]], color="#0972d3")
    axes.axvline(result["goalRatio"], color="#d13212", linestyle="--", label=f"goal {result['goalRatio']}x")
    axes.set_xlabel("init + first request ÷ (import boto3, a client, the same AWS calls)")
    axes.set_title(f"Cold start, median of {result['runs']}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def plot_handler_cpu(rows: list[dict[str, Any]], path: Path) -> None:
    measured = [row for row in rows if row["case"] != bench_handler_cpu.BASELINE]
    figure, axes = pyplot.subplots(figsize=(9, 0.35 * len(measured) + 1.4), dpi=100)
    colors = {
        "availability": "#0972d3",
        "booking": "#037f0c",
        "publisher": "#c33d69",
        "waitlist": "#7d3c98",
        "webhooks": "#d45b07",
        "notifications": "#067f68",
        "audit": "#8d6605",
    }
    names = [f"{row['function']}: {row['case']}" for row in measured]
    axes.barh(names, [row["ratio"] for row in measured], color=[colors[row["function"]] for row in measured])
    axes.invert_yaxis()
    axes.set_xlabel(
        "CPU per request ÷ a trivial Powertools route's (stream batches: per record; a sweep: per invocation)"
    )
    axes.set_title("Handler CPU, storage faked by a recorded tape")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def plot_cost(result: dict[str, Any], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(6, 4), dpi=100)
    volumes = result["volumes"]
    xs = [row["bookingsPerMonth"] for row in volumes]
    axes.loglog(xs, [row["usd"] for row in volumes], "o-", label="without the Free Tier")
    axes.loglog(xs, [max(row["usdFreeTier"], 0.01) for row in volumes], "s--", label="with the always-free tier")
    axes.set_xlabel("bookings a month")
    axes.set_ylabel(f"USD a month ({result['region']})")
    axes.set_title("What a month costs, by volume")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def markdown(results: dict[str, Any]) -> str:
    cold, slots = results["coldStart"], results["slotGrowth"]
    lines = ["## Cold start", "", "| function (first request) | median ms | x baseline |", "|---|---:|---:|"]
    lines += [f"| {row['function']} | {row['functionMs']} | {row['ratio']:.2f} |" for row in cold["rows"]]
    lines += ["", f"Worst: {cold['worstRatio']:.3f}x (goal ≤ {cold['goalRatio']}).", "", "## Slot search growth", ""]
    lines += ["| bookings (62 days) | CPU ms |", "|---:|---:|"]
    lines += [f"| {row['bookings']:,} | {row['cpuMs']} |" for row in slots["byBookings"]]
    lines += ["", "| window (days, 500 bookings) | CPU ms |", "|---:|---:|"]
    lines += [f"| {row['days']} | {row['cpuMs']} |" for row in slots["byWindowDays"]]
    lines += [
        "",
        f"Slopes of log(cost) on log(size): bookings {slots['slopeBookings']}, window {slots['slopeWindow']}"
        f" (linear is 1; goal ≤ {slots['maxSlope']}).",
        "",
        "![cold start](cold-start.png) ![by bookings](slot-search-by-bookings.png)"
        " ![by window](slot-search-by-window.png)",
        "",
        "## DynamoDB per API operation (mean per call)",
        "",
        bench_capacity.markdown(results["capacity"]),
        "## Handler CPU per request, storage faked",
        "",
        bench_handler_cpu.markdown(results["handlerCpu"]),
        "![handler CPU](handler-cpu.png)",
        "",
        "## Booking throughput: local stack ÷ straight to the emulator",
        "",
        bench_throughput.markdown(results["throughput"]),
        "## Contention: one provider's day ÷ spread over days",
        "",
        bench_contention.markdown(results["contention"]),
        "## Cost",
        "",
        cost.markdown(results["cost"]),
        "![cost by volume](cost-by-volume.png)",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no verdict (for make test)")
    parser.add_argument("--out", default="", help="default: loadtests/reports/bench-<timestamp>/")
    args = parser.parse_args(argv)
    if not (bench_cold_start.LAYER / "boto3").is_dir():
        parser.error(f"no dependency layer at {bench_cold_start.LAYER}: `make bench` builds it")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out or REPORTS / f"bench-{stamp}{'-quick' if args.quick else ''}")
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {"measuredAt": stamp, "quick": args.quick}
    results["coldStart"] = cold_start(1 if args.quick else 7)
    if args.quick:
        results["slotGrowth"] = slot_growth(1, [100, 300, 1_000], [1, 7, 14])
    else:
        results["slotGrowth"] = slot_growth(21, BOOKINGS, WINDOWS)
    results["handlerCpu"] = bench_handler_cpu.run(args.quick)
    # --quick runs the two latency parts on one stack (each starts its own otherwise). The capacity
    # part always has its own: it counts every request, stream record and log line of its stack.
    one_stack = local_stack("bench-smoke", environments=bench_contention.QUICK_CLIENTS)
    with one_stack if args.quick else nullcontext() as shared:
        results["throughput"] = bench_throughput.run(args.quick, shared)
        results["contention"] = bench_contention.run(args.quick, shared)
    results["capacity"] = bench_capacity.measure(1 if args.quick else 5)
    profile = cost.profile_from(
        results["capacity"], results["handlerCpu"], cost.template_facts(), results["coldStart"]["rows"]
    )
    results["cost"] = cost.report(profile, cost.Traffic())
    slots = results["slotGrowth"]
    plot_cold_start(results["coldStart"], out / "cold-start.png")
    plot_growth(
        slots["byBookings"], "bookings", "bookings", slots["slopeBookings"], out / "slot-search-by-bookings.png"
    )
    plot_growth(slots["byWindowDays"], "days", "window (days)", slots["slopeWindow"], out / "slot-search-by-window.png")
    plot_handler_cpu(results["handlerCpu"], out / "handler-cpu.png")
    plot_cost(results["cost"], out / "cost-by-volume.png")
    failed = []
    if results["coldStart"]["worstRatio"] > results["coldStart"]["goalRatio"]:
        failed.append(f"cold start {results['coldStart']['worstRatio']:.3f}x > {results['coldStart']['goalRatio']}x")
    if results["contention"]["ratio"] > bench_contention.GOAL:
        failed.append(f"one day ÷ spread {results['contention']['ratio']:.2f} > {bench_contention.GOAL}")
    for name in ("slopeBookings", "slopeWindow"):
        if slots[name] > MAX_SLOPE:
            failed.append(f"slot search grows faster than linearly ({name} {slots[name]})")
    results["failedGoals"] = [] if args.quick else failed
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))
    print("goals: " + ("; ".join(results["failedGoals"]) or "all met" if not args.quick else "not judged (--quick)"))
    print(f"written to {out}")
    return 1 if results["failedGoals"] else 0


if __name__ == "__main__":
    sys.exit(main())
