"""Benchmark: DynamoDB requests and capacity units per API operation, and per audited change.

A local stack of its own runs a scripted day of `repeat` rounds, each with a provider of its own: its
set-up, a slot search, a booking (with an Idempotency-Key, as clients send it), a second booking on
the calendar the container remembers, a read, the customer's list, a reschedule, a cancellation, the
provider's day view and an override put and removed. Each API
response carries its `X-Amzn-Trace-Id`; the emulator's meter (local/emulator/capacity.py) records every
DynamoDB request with the trace it came from, so the units add up per API operation. Whatever the
audit consumer's stream batches spent is divided by the events it recorded (one transaction each).

Then the stack's clock moves a year on, so that every item with a time to live (busy blocks,
idempotency records) is removed, and the table's whole stream is read back: how many records it
carried, how many the audit mapping's filter lets through, how many are audit events, and how many
invocations delivering them takes at low traffic (`stream_deliveries`), with the filter and without.

    python -m loadtests.bench_capacity            # the table (part of `make bench`)
    python -m loadtests.bench_capacity --repeat 1 # the small version (`make bench-smoke`)
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from loadtests.load import SERVICES, WEEKLY, local_stack, stage_token

SEARCH_DAYS = 7  # a customer's slot search looks a week ahead
PAST_EVERY_TTL = 365 * 24 * 3600  # seconds the clock moves after the day: every TTL has fired by then


class TracedApi:
    """The stack's API with one token; remembers each operation's trace ids."""

    def __init__(self, host: str, token: str, traces: dict[str, list[str]]) -> None:
        self.host, self.token, self.traces = host, token, traces

    def __call__(self, name: str, method: str, path: str, body: Any = None, ok: int = 200) -> Any:
        request = urllib.request.Request(
            f"{self.host}{path}", method=method, data=None if body is None else json.dumps(body).encode()
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {self.token}")
        if name.startswith("POST /bookings"):  # both bookings, as clients send them
            request.add_header("Idempotency-Key", f"bench-{len(self.traces[name])}-{datetime.now(UTC).timestamp()}")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, headers, text = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, headers, text = error.code, error.headers, error.read()
        if status != ok:
            raise RuntimeError(f"{name}: {status} {text[:300]!r}")
        self.traces[name].append(headers["X-Amzn-Trace-Id"].split(";")[0].removeprefix("Root="))
        return json.loads(text) if text else None


def scripted_day(host: str, repeat: int) -> dict[str, list[str]]:
    """Run the operations; answer the trace ids of each."""
    traces: dict[str, list[str]] = defaultdict(list)
    owner = TracedApi(host, stage_token(host, "bench-owner", "providers"), traces)
    customer = TracedApi(host, stage_token(host, "bench-customer", "customers"), traces)
    for round_number in range(repeat):
        # A provider of its own each round: its first booking is one no container remembers the
        # calendar of (a read, then a commit: the path the cost model counts), whatever the rounds
        # before changed.
        clinic = {"name": f"Bench clinic {round_number}", "timeZone": "UTC"}
        pid = owner("POST /providers", "POST", "/providers", clinic, 201)["providerId"]
        owner("PUT /providers/{id}/schedule", "PUT", f"/providers/{pid}/schedule", {"weekly": WEEKLY})
        service = SERVICES[0]
        sid = owner("POST /providers/{id}/services", "POST", f"/providers/{pid}/services", service, 201)["serviceId"]
        day = (datetime.now(UTC) + timedelta(days=2 + round_number)).replace(hour=0, minute=0, second=0, microsecond=0)
        week = f"from={quote(day.isoformat())}&to={quote((day + timedelta(days=SEARCH_DAYS)).isoformat())}"
        found = customer("GET /providers/{id}/slots", "GET", f"/providers/{pid}/slots?serviceId={sid}&{week}")
        first, later = found["slots"][0]["start"], found["slots"][-1]["start"]
        booking = customer(
            "POST /bookings", "POST", "/bookings", {"providerId": pid, "serviceId": sid, "start": first}, 201
        )
        # A second booking of the day, well clear of the first: the container remembers the calendar
        # it has just read and changed, so this one commits without a read (decision 0007). The
        # first is the dearer path, a read and a commit, which the cost model counts.
        clear = datetime.fromisoformat(found["slots"][0]["end"]) + timedelta(hours=2)
        second = next(slot["start"] for slot in found["slots"] if datetime.fromisoformat(slot["start"]) >= clear)
        customer(
            "POST /bookings (calendar remembered)",
            "POST",
            "/bookings",
            {"providerId": pid, "serviceId": sid, "start": second},
            201,
        )
        path = f"/bookings/{booking['bookingId']}"
        customer("GET /bookings/{id}", "GET", path)
        customer("GET /bookings (own)", "GET", "/bookings?limit=20")
        customer("POST /bookings/{id}/reschedule", "POST", f"{path}/reschedule", {"start": later})
        customer("POST /bookings/{id}/cancel", "POST", f"{path}/cancel", {"reason": "bench"})
        one_day = f"from={quote(day.isoformat())}&to={quote((day + timedelta(days=1)).isoformat())}"
        owner("GET /bookings?providerId", "GET", f"/bookings?providerId={pid}&{one_day}&limit=100")
        far = (day + timedelta(days=60)).date().isoformat()
        override = {"intervals": [{"start": "10:00", "end": "12:00"}]}
        owner("PUT /providers/{id}/overrides/{date}", "PUT", f"/providers/{pid}/overrides/{far}", override)
        owner("DELETE /providers/{id}/overrides/{date}", "DELETE", f"/providers/{pid}/overrides/{far}", ok=204)
    return traces


# The functions that hear of a change from the bus continue its request's trace; each is priced by a
# case of its own (bench-handler-cpu, loadtests/cost.py), so its calls are no part of the request's.
PRICED_APART = ("-publisher", "-waitlist", "-webhooks", "-notifications")


def per_operation(traces: dict[str, list[str]], ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean DynamoDB requests and units per call of each operation, and per audited change."""
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in ledger:
        if not str(entry.get("caller", "")).endswith(PRICED_APART):
            by_trace[entry["trace_id"]].append(entry)
    rows = []
    for name, ids in traces.items():
        entries = [entry for trace in ids for entry in by_trace.pop(trace, [])]
        rows.append(_row(name, len(ids), entries))
    rest = [entry for entries in by_trace.values() for entry in entries]  # the audit consumer's batches
    recorded = sum(entry["operation"] == "TransactWriteItems" for entry in rest)  # one per event recorded
    rows.append(_row("audit consumer, per audited change", recorded, rest))
    return rows


def _row(name: str, calls: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(value: float) -> float:
        return round(value / max(calls, 1), 2)

    return {
        "operation": name,
        "calls": calls,
        "dynamodbRequests": mean(len(entries)),
        "readUnits": mean(sum(e["read_units"] for e in entries)),
        "writeUnits": mean(sum(e["write_units"] for e in entries)),
        "indexWriteUnits": mean(sum(e["index_write_units"] for e in entries)),
        "byOperation": dict(sorted(_count(e["operation"] for e in entries).items())),
    }


def _count(names: Any) -> dict[str, int]:
    counted: dict[str, int] = defaultdict(int)
    for name in names:
        counted[name] += 1
    return counted


def stream_deliveries(records: list[dict[str, Any]], event_filter: Any) -> dict[str, Any]:
    """What the audit mapping would deliver of a stream (records as Lambda delivers them), with its
    filter and without, and the invocations that takes at low traffic.

    At low traffic the batching window gathers one write request's records and nothing else, so each
    request whose records reach the function is one invocation, and each TTL removal (DynamoDB's own,
    at a time of its choosing) another. A request is known by the `requestId` its items carry; records
    without one (busy blocks, idempotency records, a deleted item's) are written in the same transaction
    as an item that has one, and ride in its invocation.
    """
    from services.audit.domain.events import audit_event

    def invocations(delivered: list[dict[str, Any]]) -> int:
        by_ttl = sum("userIdentity" in record for record in delivered)
        requests = {
            record["dynamodb"]["NewImage"]["requestId"]["S"]
            for record in delivered
            if "requestId" in record["dynamodb"].get("NewImage", {}) and "userIdentity" not in record
        }
        return len(requests) + by_ttl

    kept = [record for record in records if event_filter is None or event_filter.keeps(record)]
    return {
        "records": len(records),
        "kept": len(kept),
        "events": sum(audit_event(record) is not None for record in records),
        "ttlRemovals": sum("userIdentity" in record for record in records),
        "invocationsLowTraffic": {"filtered": invocations(kept), "unfiltered": invocations(records)},
    }


def read_stream(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    """The shard's every record, from its start, as a Lambda event source mapping delivers them."""
    from local.lambda_runtime.stream_records import lambda_record

    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    iterator = iterator["ShardIterator"]
    records: list[dict[str, Any]] = []
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records += [lambda_record(dict(record), stream_arn) for record in page["Records"]]
        if not page["Records"]:
            return records
        iterator = page["NextShardIterator"]


def log_bytes(logs_dir: Path) -> dict[str, float]:
    """What CloudWatch Logs would ingest: bytes per API request of the access log, and per invocation
    of each function's log group (its own lines, EMF documents and the platform's lines)."""
    access = (logs_dir / "api-access.log").read_bytes().splitlines()
    measured = {"api access log, per request": len(access) and sum(map(len, access)) / len(access)}
    for log in sorted(logs_dir.glob("appointments-*.log")):
        lines = log.read_bytes().splitlines()
        invocations = sum(b'"type": "platform.start"' in line for line in lines)
        function = log.stem.rsplit("-", 1)[1]
        measured[f"{function}, per invocation"] = sum(map(len, lines)) / max(invocations, 1)
    return {name: round(value) for name, value in measured.items()}


def measure(repeat: int) -> dict[str, Any]:
    """Start a stack of its own, run the day: the table per operation, and the log volumes."""
    import time

    from local.emulator.time_to_live import SWEEP_SECONDS
    from local.stack import aws_client

    with local_stack("bench-capacity") as stack:
        request = urllib.request.Request(f"{stack.url}/_local/capacity", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()  # provisioning's own requests are not the API's
        traces = scripted_day(stack.url, repeat)
        assert stack.event_source_mapping is not None
        stack.event_source_mapping.wait_caught_up()
        with urllib.request.urlopen(f"{stack.url}/_local/capacity", timeout=30) as answer:
            ledger = json.load(answer)["requests"]
        # The rest of the items' lives: every TTL fires, its removal reaches the stream.
        assert stack.emulator is not None and stack.data is not None
        streams = aws_client("dynamodbstreams", stack.emulator.endpoint)
        stack.clock.advance(PAST_EVERY_TTL)
        seen = -1
        while (records := read_stream(streams, stack.data.table_stream_arn)) and len(records) != seen:
            seen = len(records)
            time.sleep(2.5 * SWEEP_SECONDS)  # until a sweep has passed and removed nothing more
        stream = stream_deliveries(records, stack.event_source_mapping.settings.event_filter)
        stream["invocationsAtBenchPace"] = stack.event_source_mapping.invocations
        stack.event_source_mapping.wait_caught_up()  # no invocation half-logged in the figures
        logs = log_bytes(stack.logs_dir)
    return {"operations": per_operation(traces, ledger), "logBytes": logs, "stream": stream}


def markdown(result: dict[str, Any]) -> str:
    rows = result["operations"]
    lines = [
        "| operation | DynamoDB requests | read units | write units | index write units | requests by kind |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        kinds = ", ".join(f"{name} {count / max(row['calls'], 1):g}" for name, count in row["byOperation"].items())
        lines.append(
            f"| {row['operation']} | {row['dynamodbRequests']:g} | {row['readUnits']:g} | {row['writeUnits']:g}"
            f" | {row['indexWriteUnits']:g} | {kinds} |"
        )
    lines += [
        "",
        "Log bytes CloudWatch Logs would ingest: " + "; ".join(f"{k} {v:,}" for k, v in result["logBytes"].items()),
    ]
    stream = result.get("stream")
    if stream:
        low = stream["invocationsLowTraffic"]
        lines += [
            "",
            f"The day's stream, every TTL fired: {stream['records']} records, {stream['ttlRemovals']} of them TTL"
            f" removals; {stream['events']} audit events; the audit mapping's filter delivers {stream['kept']}."
            f" Audit invocations at low traffic: {low['filtered']} with the filter, {low['unfiltered']} without"
            f" ({stream['invocationsAtBenchPace']} at the benchmark's pace).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the scripted day (default 5)")
    args = parser.parse_args(argv)
    print(markdown(measure(args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
