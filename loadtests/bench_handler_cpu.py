"""Benchmark: CPU per request of each function with storage faked, as a ratio to a trivial Powertools route.

Each function runs in a fresh interpreter of its own, with the environment its CloudFormation resource
gives it, and is invoked in-process with real API Gateway and DynamoDB stream events. Storage is
faked by tape (decision 0016): each operation runs once for real against the emulator while a
botocore `response-received` hook records every HTTP answer; then it is repeated with a
`before-send` hook that hands botocore those recorded answers, so no request leaves the process and
nothing waits. What is timed (`time.process_time`, so every thread's CPU) is exactly what the
function's own CPU does per request: event parsing, validation, the domain, the adapters' request
building and answer parsing (botocore included), logs, EMF metrics and the trace's spans (sampled,
sent as UDP datagrams to a daemon address where nothing listens). A replay that asks for other
calls than the recording, or answers another status, stops the benchmark.

The baseline is a trivial route of Powertools' `APIGatewayRestResolver` answering `{"ok": true}`,
invoked the same way in the same interpreter, interleaved with the cases so a busy moment hits both.
Each case reports the median over rounds of the mean CPU per call, its ratio to the baseline, the
log bytes it writes per call (for the cost model) and the AWS calls it makes.

    python -m loadtests.bench_handler_cpu          # part of `make bench`
    python -m loadtests.bench_handler_cpu --quick  # few calls, no verdict (part of `make test`)
"""

from __future__ import annotations

import argparse
import importlib
import json
import marshal
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from loadtests.tape import Call, Exchange, Tape, dump

ROOT = Path(__file__).resolve().parent.parent
TRACE = "Root=1-5f84c7a1-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"
BASELINE = "trivial Powertools route"
# In this order: each builds on what the last made.
FUNCTIONS = ("availability", "booking", "publisher", "waitlist", "webhooks", "notifications", "audit")
# Each function's handler module, where it is not services.<function>.handler: the publisher, the
# waitlist function and the webhook dispatcher ship the booking code with other entry points.
HANDLER_MODULES = {
    "publisher": "services.booking.publisher_handler",
    "waitlist": "services.booking.waitlist_handler",
    "webhooks": "services.booking.webhook_handler",
    "notifications": "services.booking.notification_handler",
}


@dataclass
class Case:
    name: str
    invoke: Callable[[], Any]
    status: int | None  # the HTTP status each call must answer (None for stream batches)
    exchanges: list[Exchange]
    units: int = 1  # what the CPU is divided by: calls, or records of a stream batch
    event: dict[str, Any] | None = None  # what the function was given (None for the baseline)
    calls: list[Call] = field(default_factory=list)  # the AWS calls it made, with their parameters
    # Run before the recording and before every call: puts back what the recording
    # started from where the function keeps state between requests (a booking container's calendars).
    before: Callable[[], None] = lambda: None
    timings: list[float] = field(default_factory=list)
    log_bytes: list[float] = field(default_factory=list)
    per: str = ""  # what one unit is: a request, a stream record, an invocation (derived when left empty)


@cache
def _api() -> Any:
    from local.apigateway.api import ApiDefinition

    return ApiDefinition.load()


def api_event(method: str, path: str, sub: str, groups: str, body: Any = None, **headers: str) -> dict[str, Any]:
    """The event API Gateway sends for a request with a verified Cognito ID token (as the local gateway builds it)."""
    from local.apigateway.authorizer import claims_for_event
    from local.apigateway.http_messages import HttpRequest
    from local.apigateway.proxy_integration import build_event
    from local.cognito.user_pool import CUSTOMER_POOL, STAFF_POOL

    bare = path.split("?")[0]
    found = _api().find(method, bare)
    if found is None:  # the baseline's /ping is not in the API
        from local.apigateway.api import Route

        route, parameters = Route(method, bare, re.compile(re.escape(bare)), "aws_proxy", None, True, "ping"), {}
    else:
        route, parameters = found
    now = int(time.time())
    claims = claims_for_event(
        {"sub": sub, "cognito:username": sub, "cognito:groups": groups.split(","), "token_use": "id"}
        # the pool that holds the groups, as the function's STAFF_ISSUER knows it
        | {"iss": (STAFF_POOL if set(groups.split(",")) & set(STAFF_POOL.groups) else CUSTOMER_POOL).issuer}
        | {"auth_time": now, "iat": now}
        | {"exp": now + 3600, "jti": uuid.uuid4().hex}
    )
    sent = [("Host", "api.example.com"), ("Content-Type", "application/json"), *headers.items()]
    request = HttpRequest(method, path, sent, b"" if body is None else json.dumps(body).encode())
    return build_event(
        request, route, parameters, request_id=str(uuid.uuid4()), stage="bench", claims=claims, trace=TRACE
    )


class Bench:
    """One function in this interpreter: its cases, recorded once, then timed on replay."""

    def __init__(self, function: str, rounds: int, calls: int) -> None:
        self.rounds, self.calls = rounds, calls
        from services.common.aws_session import session

        self.tape = Tape()
        self.tape.install(session())  # the services' clients are made by their own botocore session
        module = HANDLER_MODULES.get(function, f"services.{function}.handler")
        self.handler = importlib.import_module(module).lambda_handler
        from local.lambda_runtime.worker import LambdaContext

        # The local runtime's context, from the function's environment; a deadline an hour away keeps
        # every call clear of the booking handler's time reserve.
        self.context: Any = LambdaContext("bench-request", int(time.time() * 1000) + 3_600_000)
        self.cases: list[Case] = [self._baseline()]

    def _baseline(self) -> Case:
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver

        trivial = APIGatewayRestResolver()

        @trivial.get("/ping")
        def ping() -> dict[str, bool]:
            return {"ok": True}

        event = api_event("GET", "/ping", "bench-customer", "customers")
        return Case(BASELINE, lambda: trivial.resolve(event, self.context), 200, [])

    def api(self, name: str, event: dict[str, Any], status: int, before: Callable[[], None] = lambda: None) -> Any:
        """Run the request for real, recording; keep it as a case; answer its JSON body."""
        before()
        self.tape.record()
        answer = self.handler(event, self.context)
        self.tape.stop()
        if answer["statusCode"] != status:
            raise RuntimeError(f"{name}: {answer['statusCode']} {answer.get('body', '')[:300]}")
        exchanges, calls = self.tape.exchanges, self.tape.calls
        self.cases.append(
            Case(name, lambda: self.handler(event, self.context), status, exchanges, 1, event, calls, before)
        )
        return json.loads(answer["body"]) if answer.get("body") else None

    def batch(self, name: str, event: dict[str, Any]) -> None:
        """A stream batch, for real and recorded; every record must succeed."""
        self.tape.record()
        answer = self.handler(event, self.context)
        self.tape.stop()
        if answer.get("batchItemFailures"):
            raise RuntimeError(f"{name}: {answer}")
        units = len(event["Records"])
        exchanges, calls = self.tape.exchanges, self.tape.calls
        self.cases.append(Case(name, lambda: self.handler(event, self.context), None, exchanges, units, event, calls))

    def invocation(self, name: str, event: dict[str, Any], expected: Any) -> None:
        """An invocation that is neither a request nor a stream batch (a scheduled one), for real and
        recorded; it must answer `expected`."""
        self.tape.record()
        answer = self.handler(event, self.context)
        self.tape.stop()
        if answer != expected:
            raise RuntimeError(f"{name}: {answer}")

        def invoke() -> Any:
            again = self.handler(event, self.context)
            if again != expected:
                raise RuntimeError(f"{name} on replay: {again}")
            return again

        self.cases.append(Case(name, invoke, None, self.tape.exchanges, 1, event, self.tape.calls, per="invocation"))

    def measure(self) -> None:
        for case in self.cases:  # one untimed call each: first-use caches, as a warm container has them
            self._run(case, 1)
        for _ in range(self.rounds):  # interleaved: a busy moment hits every case and the baseline alike
            for case in self.cases:
                sys.stdout.flush()
                written = os.fstat(1).st_size
                started = time.process_time()
                self._run(case, self.calls)
                case.timings.append((time.process_time() - started) * 1000 / (self.calls * case.units))
                sys.stdout.flush()
                case.log_bytes.append((os.fstat(1).st_size - written) / (self.calls * case.units))

    def _run(self, case: Case, calls: int) -> None:
        self.tape.exchanges = case.exchanges
        self.tape.replay()
        for _ in range(calls):
            case.before()  # a dictionary entry put back: microseconds beside the milliseconds timed
            answer = case.invoke()
            self.tape.rewind()
            if case.status is not None and answer["statusCode"] != case.status:
                raise RuntimeError(f"{case.name} on replay: {answer['statusCode']} {answer.get('body', '')[:300]}")
        self.tape.stop()

    def results(self, function: str) -> list[dict[str, Any]]:
        baseline = statistics.median(self.cases[0].timings)
        rows = []
        for case in self.cases:
            cpu = statistics.median(case.timings)
            rows.append(
                {
                    "function": function,
                    "case": case.name,
                    "per": case.per or ("record" if case.status is None else "request"),
                    "cpuMs": round(cpu, 4),
                    "ratio": round(cpu / baseline, 2),
                    "logBytes": round(statistics.median(case.log_bytes)),
                    "awsCalls": [exchange.operation for exchange in case.exchanges],
                    "s3PutBytes": sum(e.sent for e in case.exchanges if e.operation == "s3.PutObject"),
                    "units": case.units,
                }
            )
        return rows


# -- the scenario, one function at a time ------------------------------------------------------------


def availability(bench: Bench, state: dict[str, Any]) -> None:
    owner = {"sub": "bench-owner", "groups": "providers"}
    created = bench.api(
        "POST /providers", api_event("POST", "/providers", body={"name": "Bench", "timeZone": "UTC"}, **owner), 201
    )
    pid = created["providerId"]
    from loadtests.bench_capacity import SEARCH_DAYS
    from loadtests.load import SERVICES, WEEKLY

    schedule = api_event("PUT", f"/providers/{pid}/schedule", body={"weekly": WEEKLY}, **owner)
    bench.api("PUT /providers/{id}/schedule", schedule, 200)
    service = api_event("POST", f"/providers/{pid}/services", body=SERVICES[0], **owner)
    sid = bench.api("POST /providers/{id}/services", service, 201)["serviceId"]
    day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    until = day + timedelta(days=SEARCH_DAYS)
    window = urlencode({"serviceId": sid, "from": day.isoformat(), "to": until.isoformat()})
    customer = {"sub": "bench-customer", "groups": "customers"}
    search = api_event("GET", f"/providers/{pid}/slots?{window}", **customer)
    found = bench.api("GET /providers/{id}/slots", search, 200)["slots"]
    state.update(
        providerId=pid,
        serviceId=sid,
        day=day.isoformat(),
        first=found[0]["start"],
        later=found[-1]["start"],
        # a slot of the same day well clear of the first and its buffers
        following=next(
            slot["start"]
            for slot in found
            if datetime.fromisoformat(slot["start"]) >= datetime.fromisoformat(found[0]["end"]) + timedelta(hours=2)
        ),
    )


def booking(bench: Bench, state: dict[str, Any]) -> None:
    customer = {"sub": "bench-customer", "groups": "customers"}
    body = {"providerId": state["providerId"], "serviceId": state["serviceId"], "start": state["first"]}
    made = api_event("POST", "/bookings", body=body, **customer, **{"Idempotency-Key": uuid.uuid4().hex})
    # A booking container remembers the calendars it read and changed (decision 0007): the first
    # booking of a provider reads, then commits ("POST /bookings", what the cost model and the cold
    # start count: the dearer path); the next ones commit on what it remembers.
    from services.booking import handler

    memory = handler.bookings().store.remembered  # type: ignore[attr-defined]
    pid, until = state["providerId"], datetime.fromisoformat(state["first"]) + timedelta(days=7)
    bid = bench.api("POST /bookings", made, 201, lambda: memory.forget(pid))["bookingId"]
    remembered = memory.get(pid, until, datetime.now(UTC))
    warm = api_event(
        "POST",
        "/bookings",
        body={**body, "start": state["following"]},
        **customer,
        **{"Idempotency-Key": uuid.uuid4().hex},
    )
    bench.api(
        "POST /bookings (calendar remembered)",
        warm,
        201,
        lambda: memory.keep(pid, until, remembered, datetime.now(UTC)),
    )
    path = f"/bookings/{bid}"
    bench.api("GET /bookings/{id}", api_event("GET", path, **customer), 200)
    bench.api("GET /bookings (own)", api_event("GET", "/bookings?limit=20", **customer), 200)
    moved = api_event("POST", f"{path}/reschedule", body={"start": state["later"]}, **customer, **{"If-Match": '"1"'})
    bench.api("POST /bookings/{id}/reschedule", moved, 200)
    cancelled = api_event("POST", f"{path}/cancel", body={"reason": "bench"}, **customer, **{"If-Match": '"2"'})
    bench.api("POST /bookings/{id}/cancel", cancelled, 200)
    owner = {"sub": "bench-owner", "groups": "providers"}
    day = datetime.fromisoformat(state["day"])
    one_day = urlencode(
        {"providerId": state["providerId"], "from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    )
    day_view = f"/bookings?{one_day}&limit=100"
    bench.api("GET /bookings?providerId", api_event("GET", day_view, **owner), 200)
    state["bookingId"] = bid


def audit(bench: Bench, state: dict[str, Any]) -> None:
    """The stream's records of everything above: the booking's creation alone, then the rest in one batch."""
    from local.lambda_runtime.stream_records import stream_event
    from local.stack import aws_client

    streams = aws_client("dynamodbstreams", os.environ["AWS_ENDPOINT_URL"])
    arn = state["streamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    created = next(
        r for r in records if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["PK"]["S"].startswith("BOOKING#")
    )
    bench.batch("stream batch of 1 record (a booking created)", stream_event([created], arn))
    rest = [record for record in records if record is not created]
    bench.batch(f"stream batch of {len(rest)} records (per record)", stream_event(rest, arn))
    ops = {"sub": "bench-ops", "groups": "ops"}
    history = api_event("GET", f"/bookings/{state['bookingId']}/history", **ops)
    bench.api("GET /bookings/{id}/history", history, 200)


def stream_records(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, as the emulator holds them."""
    from local.stack import aws_client

    streams = aws_client("dynamodbstreams", os.environ["AWS_ENDPOINT_URL"])
    arn = state["streamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    return list(streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"])


def cancel_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in records if r["dynamodb"].get("NewImage", {}).get("lastChange", {}).get("S") == "CANCELLED")


def publisher(bench: Bench, state: dict[str, Any]) -> None:
    """The publisher as it runs at low traffic: a batch of one change (the booking's creation), its
    event put on the bus."""
    from local.lambda_runtime.stream_records import stream_event

    bench.batch(PUBLISHER_BATCH, stream_event([created_record(state)], state["streamArn"]))


def waitlist(bench: Bench, state: dict[str, Any]) -> None:
    """The waitlist function as it nearly always runs: the minute's sweep with no line to match, and
    the domain event of a change that frees time (the booking's cancel) on a provider with no line."""
    from services.booking.waitlist_handler import store
    from services.common import keys

    # As every minute's sweep after a stage's first: its mark at this hour, so it reads this hour's lapses.
    store().swept_through(keys.expiry_hour(datetime.now(UTC)))
    bench.invocation(WAITLIST_SWEEP, {"sweep": "waitlist"}, {"lines": 0, "offered": 0})
    cancelled = rule_event(cancel_record(stream_records(state)), state)
    bench.invocation(WAITLIST_MATCH, cancelled, {"offered": 0})


def rule_event(record: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A stream record's domain event, as a rule on the bus hands it to its target."""
    from local.eventbridge.rules import target_event
    from local.lambda_runtime.stream_records import lambda_record
    from services.booking.domain_events import SOURCE, domain_event

    event = domain_event(lambda_record(record, state["streamArn"]))
    assert event is not None
    journal_entry = {
        "eventId": str(uuid.uuid4()),
        "detailType": event.detail_type,
        "source": SOURCE,
        "time": event.detail["timestamp"],
        "resources": [],
        "detail": event.detail_json(),
    }
    return target_event(journal_entry)


def created_record(state: dict[str, Any]) -> dict[str, Any]:
    """The scenario's booking's creation, as the stream recorded it."""
    return next(
        r
        for r in stream_records(state)
        if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["PK"]["S"].startswith("BOOKING#")
    )


def webhooks(bench: Bench, state: dict[str, Any]) -> None:
    """The webhook dispatcher as it runs for every domain event of a stage with no subscription to it:
    the event (a booking's creation) from its rule, the subscribers looked up, none found."""
    bench.invocation(WEBHOOKS_DISPATCH, rule_event(created_record(state), state), {"deliveries": 0})


def notifications(bench: Bench, state: dict[str, Any]) -> None:
    """The notifications function as it runs for a booking's latest event when its customer has not
    opted in (the booking read, its names, its reminder plan written, the customer's contact read),
    and as a reminder fires for them (read, skipped). The scenario's booking's latest change is its
    cancel; a creation reads and writes the same, and makes its reminder's schedule too (Scheduler's
    API calls are not billed; its invocations are, in the cost model)."""
    cancelled = rule_event(cancel_record(stream_records(state)), state)
    bench.invocation(NOTIFICATIONS_EVENT, cancelled, {"kind": "CANCELLED", "outcome": "SKIPPED"})
    data = cancelled["detail"]["data"]
    fired = {"reminder": {"bookingId": data["bookingId"], "version": data["version"]}}
    bench.invocation(NOTIFICATIONS_REMINDER, fired, {"kind": "REMINDER", "outcome": "SKIPPED"})


PUBLISHER_BATCH = "stream batch of 1 record (a booking created), published"
NOTIFICATIONS_EVENT = "domain event (a booking cancelled; its customer not opted in)"
NOTIFICATIONS_REMINDER = "reminder fired (its customer not opted in)"
WEBHOOKS_DISPATCH = "domain event (a booking created; no subscription)"
WAITLIST_SWEEP = "waitlist sweep (no lines)"
WAITLIST_MATCH = "domain event (a booking cancelled; no line)"

SCENARIOS: dict[str, Callable[[Bench, dict[str, Any]], None]] = {
    "availability": availability,
    "booking": booking,
    "publisher": publisher,
    "waitlist": waitlist,
    "webhooks": webhooks,
    "notifications": notifications,
    "audit": audit,
}


def child(function: str, state_path: Path, rounds: int, calls: int, tapes: Path | None) -> None:
    """In the function's own interpreter: run its part of the scenario, then time it and write its
    rows, or (with `tapes`) only keep each case's tape in `tapes/<function>.tape`."""
    state = json.loads(state_path.read_text())
    bench = Bench(function, rounds, calls)
    SCENARIOS[function](bench, state)
    if tapes is not None:
        kept = {
            case.name: {"event": case.event, "status": case.status, **dump(case.exchanges, case.calls)}
            for case in bench.cases[1:]
        }
        (tapes / f"{function}.tape").write_bytes(marshal.dumps(kept))
    else:
        bench.measure()
        state.setdefault("rows", []).extend(bench.results(function))
    state_path.write_text(json.dumps(state))


# -- the parent: an emulator, then one interpreter per function ---------------------------------------


def scenario(child_args: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """On an emulator of its own, each function's part of the scenario in an interpreter of its own
    (`--child <function>` plus `child_args`): the template parameters they ran with, and the state
    they left (their rows)."""
    from local.cloudformation.provision import deploy_data_stack, deploy_event_buses, deploy_schedule_groups
    from local.cognito.user_pool import auth_parameters
    from local.emulator.server import EmulatorProcess
    from local.lambda_runtime.environment import function_environment, lambda_base_environment
    from local.lambda_runtime.functions import load_functions
    from local.stack import aws_client

    emulator = EmulatorProcess.start()
    try:
        dynamodb, s3 = aws_client("dynamodb", emulator.endpoint), aws_client("s3", emulator.endpoint)
        data = deploy_data_stack(dynamodb, s3, "bench")
        parameters = {**data.as_parameters(), **auth_parameters(), "Stage": "bench"}
        parameters["DependenciesLayerArn"] = "arn:aws:lambda:::layer:x:1"
        deploy_event_buses(aws_client("events", emulator.endpoint), "booking.yaml", parameters)
        deploy_schedule_groups(aws_client("scheduler", emulator.endpoint), "booking.yaml", parameters)
        # By the function's name (appointments-<stage>-<function>): the publisher and the waitlist
        # function ship the booking code too.
        specs = {spec.name.rsplit("-", 1)[1]: spec for spec in load_functions(parameters).values()}
        base = lambda_base_environment(emulator.endpoint, str(ROOT))
        with tempfile.TemporaryDirectory(prefix="bench-handler-cpu-") as scratch:
            state_path = Path(scratch) / "state.json"
            state_path.write_text(json.dumps({"streamArn": data.table_stream_arn}))
            for function in FUNCTIONS:
                env = function_environment(specs[function], base, "bench")
                env |= {"PYTHONPATH": str(ROOT), "_X_AMZN_TRACE_ID": TRACE}
                command = [sys.executable, "-m", "loadtests.bench_handler_cpu", "--child", function]
                command += ["--state", str(state_path), *child_args]
                with open(Path(scratch) / f"{function}.log", "wb") as logs:  # the function's stdout: its logs
                    done = subprocess.run(command, env=env, cwd=ROOT, stdout=logs, stderr=subprocess.PIPE, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"{function}: {done.stderr.decode()[-3000:]}")
            return parameters, json.loads(state_path.read_text())
    finally:
        emulator.stop()


def measure(rounds: int, calls: int) -> list[dict[str, Any]]:
    """Rows for every case of every function (each with its own baseline row first)."""
    rows: list[dict[str, Any]] = scenario(["--rounds", str(rounds), "--calls", str(calls)])[1]["rows"]
    return rows


def record_tapes(directory: Path) -> dict[str, str]:
    """Every case's tape, recorded once for real, into `directory/<function>.tape` (marshal: a dict of
    case name → event, status, exchanges and calls); answers the template parameters they ran with."""
    return scenario(["--tapes", str(directory)])[0]


def run(quick: bool, rounds: int = 7, calls: int = 50) -> list[dict[str, Any]]:
    """Median of `rounds` rounds of `calls` calls per case; quick: one round of three."""
    return measure(1, 3) if quick else measure(rounds, calls)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| function | case | CPU ms | x trivial route | log bytes | AWS calls |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        calls = ", ".join(row["awsCalls"]) if row["per"] != "record" else f"{len(row['awsCalls'])} for the batch"
        per = " (per record)" if row["per"] == "record" and "per record" not in row["case"] else ""
        lines.append(
            f"| {row['function']} | {row['case']}{per} | {row['cpuMs']:.3f} | {row['ratio']:.2f}"
            f" | {row['logBytes']:,} | {calls or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few calls (for make test)")
    parser.add_argument("--child", choices=FUNCTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tapes", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.state, args.rounds, args.calls, args.tapes)
        return 0
    print(markdown(run(args.quick, args.rounds, args.calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
