"""`make load`: locust against the local stack (started here when no HOST is given) or a deployed
stage, then the invariants, checked through the API itself so that they hold the same way anywhere:

- no two confirmed bookings of a provider overlap, buffers included (capacity 1 in the fixture);
- every booking's audit history is complete and without duplicates: one event per change (as many
  as the booking's version), unique event ids, starting with its creation;
- no request was answered 5xx, and nothing failed that a race does not explain.

Reports land in `loadtests/reports/<timestamp>/`: locust's HTML and JSON, the status counts, the
fixture, and `summary.json` / `summary.md` with requests, failures, p50/p95/p99 per endpoint,
bookings made and conflicts. Exit status 1 when an invariant is broken.

    python -m loadtests.load [--host URL] [--users 50] [--duration 2m] [--scenario mixed|contention]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from local.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "loadtests" / "reports"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SCENARIOS = {"mixed": ["CustomerUser", "ProviderUser"], "contention": ["ContentionUser"]}
OWNER = "load-owner"
WEEKLY = {day: [{"start": "08:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
SERVICES = [
    {
        "name": "Consultation",
        "durationMinutes": 30,
        "bufferAfterMinutes": 5,
        "slotStepMinutes": 15,
        "minNoticeMinutes": 0,
    },
    {
        "name": "Treatment",
        "durationMinutes": 60,
        "bufferBeforeMinutes": 10,
        "slotStepMinutes": 30,
        "minNoticeMinutes": 0,
    },
]


class Api:
    """The stage's API with one token."""

    def __init__(self, host: str, token: str) -> None:
        self.host, self.token = host.rstrip("/"), token

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.host}{path}", method=method, data=None if body is None else json.dumps(body).encode()
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text = answer.read()
                return answer.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text else None

    def pages(self, path: str) -> list[dict[str, Any]]:
        """Every item of a paginated list."""
        items: list[dict[str, Any]] = []
        cursor = ""
        while True:
            status, page = self("GET", path + (f"&cursor={quote(cursor)}" if cursor else ""))
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {page}")
            items += page["items"]
            cursor = page.get("nextCursor") or ""
            if not cursor:
                return items


@contextmanager
def local_stack(name: str, shared: LocalStack | None = None, environments: int | None = None) -> Iterator[LocalStack]:
    """A local stack of the benchmark's own, stopped afterwards; or `shared`, left running: `make
    bench-smoke` runs its parts on one stack, as their sizes are too small to judge anyway."""
    if shared is not None:
        yield shared
        return
    from local.lambda_runtime.function_runtime import MAX_ENVIRONMENTS
    from local.stack import LocalStack, StackConfig

    with tempfile.TemporaryDirectory(prefix=f"{name}-") as state:
        environments = environments or MAX_ENVIRONMENTS
        stack = LocalStack(StackConfig(port=0, state_dir=Path(state), echo=None, seed=False, environments=environments))
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def stage_token(host: str, sub: str, group: str) -> str:
    """`LOAD_<GROUP>_TOKEN` for a deployed stage; the local stack's mint otherwise."""
    given = os.environ.get(f"LOAD_{group.upper()}_TOKEN")
    if given:
        return given
    request = urllib.request.Request(
        f"{host}/_local/token",
        data=json.dumps({"sub": sub, "groups": [group]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["token"])


def create_fixture(api: Api, providers: int) -> dict[str, Any]:
    """Providers open every day 08:00-18:00 with two services each, owned by the load's provider user."""
    made = []
    stamp = datetime.now(UTC).strftime("%H%M%S")
    for number in range(providers):
        status, provider = api("POST", "/providers", {"name": f"Load clinic {stamp}-{number}", "timeZone": "UTC"})
        if status != 201:
            raise RuntimeError(f"creating a provider: {status} {provider}")
        pid = provider["providerId"]
        status, answer = api("PUT", f"/providers/{pid}/schedule", {"weekly": WEEKLY})
        if status != 200:
            raise RuntimeError(f"setting a schedule: {status} {answer}")
        services = []
        for spec in SERVICES:
            status, service = api("POST", f"/providers/{pid}/services", spec)
            if status != 201:
                raise RuntimeError(f"creating a service: {status} {service}")
            services.append({**spec, "serviceId": service["serviceId"]})
        made.append({"providerId": pid, "ownerSub": provider.get("ownerSub"), "services": services})
    return {"ownerSub": made[0]["ownerSub"] if made else OWNER, "providers": made}


@dataclass
class Verdict:
    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def check_no_overlap(api: Api, fixture: dict[str, Any], verdict: Verdict) -> list[dict[str, Any]]:
    """Confirmed bookings of each provider, buffers included, never overlap (capacity 1)."""
    everything: list[dict[str, Any]] = []
    for provider in fixture["providers"]:
        rules = {s["serviceId"]: s for s in provider["services"]}
        bookings = api.pages(f"/bookings?providerId={provider['providerId']}&limit=100")
        everything += bookings
        claims = []
        for booking in bookings:
            if booking["status"] != "CONFIRMED":
                continue
            rule = rules[booking["serviceId"]]
            start = datetime.fromisoformat(booking["start"]) - timedelta(minutes=rule.get("bufferBeforeMinutes", 0))
            end = datetime.fromisoformat(booking["end"]) + timedelta(minutes=rule.get("bufferAfterMinutes", 0))
            claims.append((start, end, booking["bookingId"]))
        claims.sort()
        for (_, end, first), (start, _, second) in itertools.pairwise(claims):
            if start < end:
                verdict.violations.append(f"overlapping confirmed bookings: {first} and {second}")
    verdict.figures["bookingsMade"] = len(everything)
    verdict.figures["confirmedAtEnd"] = sum(1 for b in everything if b["status"] == "CONFIRMED")
    return everything


def check_audit(ops: Api, bookings: list[dict[str, Any]], verdict: Verdict, settle_seconds: float) -> None:
    """Each booking's history has one event per change (its version), unique ids, creation first."""
    deadline = time.monotonic() + settle_seconds
    missing: list[str] = []
    for booking in bookings:
        while True:
            status, page = ops("GET", f"/bookings/{booking['bookingId']}/history?limit=100")
            events = page.get("items", []) if status == 200 and page else []
            if len(events) >= booking["version"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # the audit consumer is asynchronous: give it its lag
        ids = [event.get("eventId") for event in events]
        if len(ids) != len(set(ids)):
            verdict.violations.append(f"{booking['bookingId']}: duplicate audit events")
        if len(events) != booking["version"]:
            missing.append(f"{booking['bookingId']}: {len(events)} audit events for version {booking['version']}")
    verdict.violations += missing
    verdict.figures["auditedBookings"] = len(bookings) - len(missing)


def check_statuses(statuses: dict[str, int], stats: list[dict[str, Any]], verdict: Verdict) -> None:
    server_errors = {key: count for key, count in statuses.items() if key.rsplit(" ", 1)[1].startswith("5")}
    if server_errors:
        verdict.violations.append(f"5xx answers: {server_errors}")
    failures = sum(int(entry["num_failures"]) for entry in stats)
    if failures:
        verdict.violations.append(f"{failures} failed requests (see the report's failures)")
    verdict.figures["conflicts"] = sum(count for key, count in statuses.items() if key.endswith(" 409"))


def percentile(histogram: dict[str, int], share: float) -> float | None:
    """The response time below which `share` of requests fell, from locust's rounded histogram."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for value, count in sorted(((float(k), v) for k, v in histogram.items())):
        seen += count
        if seen >= share * total:
            return value
    return None


def summarize(stats: list[dict[str, Any]], verdict: Verdict) -> list[dict[str, Any]]:
    rows = []
    for entry in sorted(stats, key=lambda e: str(e["name"])):
        histogram = entry.get("response_times", {})
        rows.append(
            {
                "endpoint": entry["name"],  # the locustfile names requests "METHOD /path"
                "requests": entry["num_requests"],
                "failures": entry["num_failures"],
                "p50": percentile(histogram, 0.50),
                "p95": percentile(histogram, 0.95),
                "p99": percentile(histogram, 0.99),
            }
        )
    verdict.figures["requests"] = sum(row["requests"] for row in rows)
    verdict.figures["failures"] = sum(row["failures"] for row in rows)
    return rows


def markdown(rows: list[dict[str, Any]], verdict: Verdict) -> str:
    lines = ["| endpoint | requests | failures | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        shown = ["-" if row[k] is None else f"{row[k]:g}" for k in ("p50", "p95", "p99")]
        lines.append(f"| {row['endpoint']} | {row['requests']} | {row['failures']} | {' | '.join(shown)} |")
    figures = ", ".join(f"{key} {value}" for key, value in verdict.figures.items())
    outcome = "all invariants hold" if not verdict.violations else "VIOLATIONS:\n- " + "\n- ".join(verdict.violations)
    return "\n".join(lines) + f"\n\n{figures}\n\n{outcome}\n"


def run(args: argparse.Namespace) -> int:
    report = Path(args.report_dir or REPORTS / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    report.mkdir(parents=True, exist_ok=True)
    stack = None
    host = args.host
    if not host:
        from local.lambda_runtime.function_runtime import MAX_ENVIRONMENTS
        from local.stack import LocalStack, StackConfig

        stack = LocalStack(
            StackConfig(
                port=0,
                state_dir=report / "local-stack",
                echo=None,
                seed=False,
                environments=args.environments or MAX_ENVIRONMENTS,
            )
        )
        stack.start()
        host = stack.url
        print(f"local stack at {host}", file=sys.stderr)
    try:
        owner = Api(host, stage_token(host, OWNER, "providers"))
        fixture = create_fixture(owner, args.providers)
        (report / "fixture.json").write_text(json.dumps(fixture, indent=1))
        environment = {
            **os.environ,
            "LOAD_FIXTURE": str(report / "fixture.json"),
            "LOAD_STATUSES": str(report / "statuses.json"),
        }
        command = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
            "--users", str(args.users), "--spawn-rate", str(max(1, args.users // 10)), "--run-time", args.duration,
            "--host", host, "--html", str(report / "locust.html"), "--json-file", str(report / "locust"),
            "--exit-code-on-error", "0", "--stop-timeout", "10", *SCENARIOS[args.scenario],
        ]  # fmt: skip
        subprocess.run(command, env=environment, check=True, cwd=ROOT)
        if stack is not None and stack.event_source_mapping is not None:
            stack.event_source_mapping.wait_caught_up()
        verdict = Verdict()
        stats = json.loads((report / "locust.json").read_text())
        statuses = json.loads((report / "statuses.json").read_text())
        rows = summarize(stats, verdict)
        check_statuses(statuses, stats, verdict)
        bookings = check_no_overlap(Api(host, stage_token(host, "load-admin", "admins")), fixture, verdict)
        check_audit(Api(host, stage_token(host, "load-ops", "ops")), bookings, verdict, args.settle_seconds)
    finally:
        if stack is not None:
            stack.stop()
    text = markdown(rows, verdict)
    (report / "summary.md").write_text(text)
    (report / "summary.json").write_text(
        json.dumps({"endpoints": rows, **verdict.figures, "violations": verdict.violations}, indent=1)
    )
    print(text)
    print(f"reports in {report}")
    return 1 if verdict.violations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.load", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="", help="a deployed stage's URL; empty: start the local stack")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", default="2m", help="locust's --run-time, e.g. 30s, 2m")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="mixed")
    parser.add_argument("--providers", type=int, default=4)
    parser.add_argument(
        "--environments", type=int, default=0, help="the local stack's worker processes per function (0: its default)"
    )
    parser.add_argument("--settle-seconds", type=float, default=60, help="how long the audit trail may lag")
    parser.add_argument("--report-dir", default="", help="default: loadtests/reports/<timestamp>/")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
