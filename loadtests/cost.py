"""`make cost`: what a month of Appointments costs on AWS, and what a million bookings cost.

The model multiplies what this project measures by the public prices in `loadtests/prices.toml`:

- **per API operation** (loadtests/bench_capacity.py, on a local stack): DynamoDB read and write
  request units (index writes included), and the log bytes each function and the API's access log
  write per call; from the same day's recorded stream, the audit invocations per audited change
  (what the mapping's filter delivers, at low traffic);
- **per request** (loadtests/bench_handler_cpu.py): each handler's CPU milliseconds and the AWS calls
  it makes; **per audited change**: the audit consumer's CPU, DynamoDB units, S3 PUTs and the
  archived object's bytes;
- **per cold start** (loadtests/bench_cold_start.py): each function's init, billed since 1 August
  2025 for on-demand functions in managed runtimes;
- **from the templates**: each function's memory, the alarms (and the metrics they evaluate), the one
  dashboard, and the custom metrics the functions emit.

A Lambda invocation is billed for its duration, which is modelled as the measured CPU stretched by
the CPU share Lambda gives the function's memory (one vCPU at 1,769 MB, proportionally less below),
plus the time each AWS call waits on the network (`LATENCY_MS`, DynamoDB's and S3's typical
single-digit and tens of milliseconds), rounded up to the millisecond. The INIT phase of a cold start
is billed the same way: the measured init stretched by the CPU share, at the function's memory. Cold
starts are a share of each function's invocations: at least AWS's "under 1 %" for production
workloads, more when requests are so sparse that an environment idles out between them. The traffic mix says how many
of each API call one booking brings with it; the default is the load test's customer mix (60 %
searches, 25 % bookings, 10 % cancellations, 5 % reschedules) plus a customer reading the booking,
their list, a provider's day view and a schedule edit now and then. Every figure is printed with
its quantity, so a reader can check the arithmetic.

    make cost                                  # measure, then price 100,000 bookings a month
    make cost BOOKINGS=20000 MIX="GET /providers/{id}/slots=5"
    make cost FROM=loadtests/reports/bench-<stamp>/results.json   # price a `make bench` run's figures
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().with_name("prices.toml")
FULL_VCPU_MB = 1769  # Lambda's documented memory size at which a function has one vCPU
HOURS_PER_MONTH = 730  # how AWS prices a month of hourly resources
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600

# Calls per booking: what one booking brings with it.
DEFAULT_MIX: dict[str, float] = {
    "GET /providers/{id}/slots": 2.4,  # 60 % of customers' requests, against 25 % bookings
    "POST /bookings": 1.0,
    "POST /bookings/{id}/cancel": 0.4,  # 10 %
    "POST /bookings/{id}/reschedule": 0.2,  # 5 %
    "GET /bookings/{id}": 1.0,  # the customer looks at the booking once
    "GET /bookings (own)": 0.5,
    "GET /bookings?providerId": 0.2,  # the provider's day view
    "PUT /providers/{id}/schedule": 0.01,  # a schedule edit per hundred bookings
}
# Operations whose change the audit consumer records (one stream event each).
AUDITED = {
    "POST /bookings",
    "POST /bookings/{id}/cancel",
    "POST /bookings/{id}/reschedule",
    "PUT /providers/{id}/schedule",
}
AUDIT_CASE = "stream batch of 1 record (a booking created)"
AUDIT_CAPACITY = "audit consumer, per audited change"

# Milliseconds a call waits on AWS from inside a function: typical, not measured here (no AWS account).
LATENCY_MS = {
    "dynamodb.GetItem": 4.0,
    "dynamodb.Query": 6.0,
    "dynamodb.PutItem": 6.0,
    "dynamodb.UpdateItem": 6.0,
    "dynamodb.DeleteItem": 6.0,
    "dynamodb.TransactWriteItems": 15.0,
    "s3.PutObject": 30.0,
    "s3.HeadObject": 10.0,
    "eventbridge.PutEvents": 20.0,
}
OTHER_CALL_MS = 10.0

# Custom metrics (EMF): one per metric name and dimension set. The error mapping counts refusals in
# every function that serves the API, so these two exist once per such function; Powertools adds
# ColdStart per function.
METRICS_IN_EVERY_FUNCTION = {"ValidationFailed", "AuthDenied"}
API_FUNCTIONS = ("availability", "booking", "audit")
FUNCTIONS = ("availability", "booking", "publisher", "waitlist", "webhooks", "notifications", "audit")

# The waitlist function (decision 0026): a sweep a minute whatever the traffic (EventBridge Scheduler),
# and a match per change its mapping's filter lets through (those of the mix: cancels, reschedules).
# Both priced as they nearly always run, on a provider with no line: one Query of an empty line, the
# minimum a Query costs (eventually consistent: half a unit, decision 0015).
SWEEPS_PER_MONTH = HOURS_PER_MONTH * 60
FREES_TIME = {"POST /bookings/{id}/cancel", "POST /bookings/{id}/reschedule", "PUT /providers/{id}/schedule"}
WAITLIST_SWEEP_CASE = "waitlist sweep (no lines)"
WAITLIST_MATCH_CASE = "domain event (a booking cancelled; no line)"
# The publisher (decision 0027): one domain event per audited change, put on the bus by an invocation
# per change at low traffic (its mapping does not wait to batch), as the audit consumer's worst case.
PUBLISHER_CASE = "stream batch of 1 record (a booking created), published"
# The webhook dispatcher (decision 0029): its rule sends it every domain event, so one invocation per
# published change whatever the subscriptions, priced as it runs with none: the two Queries of the
# subscriptions' partition (eventually consistent, half a unit each). Deliveries are per subscriber and
# not priced here: each adds a put, and per attempt three reads, two writes, a schedule (its retry,
# made before sending) and that retry's short invocation; a KMS decrypt per container and secret.
WEBHOOKS_CASE = "domain event (a booking created; no subscription)"
WEBHOOKS_READ_UNITS = 1.0
EMPTY_LINE_READ_UNITS = 0.5
# Notifications (decision 0031): its rule sends it the booking events (of the mix: bookings made,
# cancelled, moved), and each booking's reminder fires once (EventBridge Scheduler invocations).
# Priced as they run for a customer who has not opted in: the booking read (consistent, 1 unit), its
# names (eventually consistent, 2 x 0.5), the customer's contact (1), and for an event its reminder
# plan written (1 WRU). A message sent adds its claim and record (2 WRU) and WhatsApp's fees per
# message (AWS's and Meta's, by country): not priced here (docs/cost.md says how to add them).
NOTIFIED = {"POST /bookings", "POST /bookings/{id}/cancel", "POST /bookings/{id}/reschedule"}
NOTIFICATIONS_EVENT_CASE = "domain event (a booking cancelled; its customer not opted in)"
NOTIFICATIONS_REMINDER_CASE = "reminder fired (its customer not opted in)"
NOTIFICATIONS_READ_UNITS = 3.0
NOTIFICATIONS_EVENT_WRITE_UNITS = 1.0
# The sweep also writes down what lapsed (decision 0027): its mark read (GetItem, consistent: 1 unit)
# and written (PutItem: 1 unit), and this hour's markers read (a consistent Query: 1 unit at least).
# The markers themselves, one per hold or pending booking, are in those operations' measured units.
LAPSE_SWEEP_READ_UNITS = 2.0
LAPSE_SWEEP_WRITE_UNITS = 1.0

# Cold starts. AWS: "cold starts typically occur in under 1% of invocations" of production workloads
# (Lambda operator guide; the INIT billing announcement of April 2025 repeats it). How long an idle
# environment is kept is not documented: minutes, modelled here as ENVIRONMENT_IDLE_MINUTES.
COLD_START_FLOOR = 0.01
ENVIRONMENT_IDLE_MINUTES = 10.0


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file)


@dataclass(frozen=True)
class Operation:
    """One call of an API operation, or one audited change, as measured."""

    name: str
    function: str
    read_units: float
    write_units: float  # the table's and the indexes'
    cpu_ms: float
    aws_calls: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """Everything measured that the bill depends on."""

    operations: dict[str, Operation]
    audit: Operation  # per audited change, delivered in a batch of its own (low traffic's worst case)
    archive_bytes_per_change: float
    log_bytes_per_invocation: dict[str, float]  # by function
    access_log_bytes_per_request: float
    memory_mb: dict[str, int]
    alarm_metrics: int
    composite_alarms: int
    custom_metrics: int
    dashboards: int = 1
    waf_web_acls: int = 1  # the API stage's (cloudformation/api.yaml)
    waf_rules: int = 3  # its rules: the rate limit and two AWS managed rule groups
    # From the recorded stream: invocations of the audit function per audited change at low traffic,
    # with the mapping's filter (priced) and without it (for comparison).
    audit_invocations_per_change: float = 1.0
    audit_invocations_per_change_unfiltered: float = 1.0
    init_ms: dict[str, float] = field(default_factory=dict)  # by function: the measured INIT (median)
    # The waitlist function's two invocations (None: not measured, as in figures from before it)
    waitlist_sweep: Operation | None = None
    waitlist_match: Operation | None = None
    publisher: Operation | None = None  # one invocation per change (None: not measured, older figures)
    webhooks: Operation | None = None  # one invocation per published event (None: not measured)
    notification_event: Operation | None = None  # one per booking event of the mix (None: not measured)
    reminder: Operation | None = None  # one per booking made (None: not measured)


@dataclass(frozen=True)
class Traffic:
    bookings_per_month: float = 100_000
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    architecture: str = "arm64"  # the root stack's default
    peak_to_average: float = 10.0  # what provisioned capacity must be sized for
    xray_reservoir_per_second: float = 1.0  # X-Ray's default sampling rule: 1 a second, then 5 %
    xray_rate: float = 0.05
    twelve_month_free_tier: bool = False


@dataclass
class Line:
    service: str
    item: str
    quantity: float
    unit: str
    usd: float
    usd_free_tier: float
    fixed: bool = False  # paid whatever the traffic (alarms, dashboard, metrics)


def billed_ms(operation: Operation, memory_mb: int) -> int:
    """Duration: the CPU at the memory's share of a vCPU, plus the waits on AWS, rounded up to 1 ms."""
    cpu = operation.cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb)
    waits = sum(LATENCY_MS.get(call, OTHER_CALL_MS) for call in operation.aws_calls)
    return max(1, math.ceil(cpu + waits))


def cold_start_share(invocations_per_month: float) -> float:
    """The share of a function's invocations that start an environment (and pay its INIT): the chance
    that no request came in the idle time before one (requests spread evenly, arriving at random),
    and never under AWS's 1 %."""
    rate = invocations_per_month / SECONDS_PER_MONTH
    return max(COLD_START_FLOOR, math.exp(-rate * ENVIRONMENT_IDLE_MINUTES * 60))


def init_billed_ms(init_ms: float, memory_mb: int) -> int:
    """An INIT's billed duration: the init measured on a full core, at the memory's share of a vCPU."""
    return max(1, math.ceil(init_ms * max(1.0, FULL_VCPU_MB / memory_mb)))


def sampled_traces(per_month: float, traffic: Traffic) -> float:
    """Traces X-Ray records under its default rule, with the traffic spread evenly over the month."""
    rate = per_month / SECONDS_PER_MONTH
    reservoir = min(rate, traffic.xray_reservoir_per_second)
    return (reservoir + traffic.xray_rate * max(0.0, rate - reservoir)) * SECONDS_PER_MONTH


def _free(quantity: float, allowance: float) -> float:
    return max(0.0, quantity - allowance)


def _line(
    service: str, item: str, quantity: float, unit: str, price: float, allowance: float = 0.0, fixed: bool = False
) -> Line:
    """`quantity` at `price` per unit; with the Free Tier, its `allowance` comes off first."""
    return Line(service, item, quantity, unit, quantity * price, _free(quantity, allowance) * price, fixed)


def estimate(profile: Profile, traffic: Traffic, prices: dict[str, Any]) -> list[Line]:
    """The month's bill, line by line."""
    unknown = sorted(set(traffic.mix) - set(profile.operations))
    if unknown:
        raise ValueError(f"the mix names operations that were not measured: {unknown}")
    bookings = traffic.bookings_per_month
    calls = {name: per_booking * bookings for name, per_booking in traffic.mix.items()}
    changes = sum(count for name, count in calls.items() if name in AUDITED)
    api_requests = sum(calls.values())
    invocations = dict.fromkeys(FUNCTIONS, 0.0)
    gb_seconds = read_units = write_units = 0.0
    for name, count in [*calls.items(), (AUDIT_CAPACITY, changes)]:
        operation = profile.audit if name == AUDIT_CAPACITY else profile.operations[name]
        memory = profile.memory_mb[operation.function]
        # The audit function is invoked per delivery of the filtered stream, not once per change.
        per_call = profile.audit_invocations_per_change if name == AUDIT_CAPACITY else 1.0
        invocations[operation.function] += count * per_call
        gb_seconds += count * billed_ms(operation, memory) / 1000 * memory / 1024
        read_units += count * operation.read_units
        write_units += count * operation.write_units
    published = changes if profile.publisher is not None else 0.0
    if profile.publisher is not None:
        memory = profile.memory_mb["publisher"]
        invocations["publisher"] += published
        gb_seconds += published * billed_ms(profile.publisher, memory) / 1000 * memory / 1024
    if profile.webhooks is not None:  # every published event reaches the dispatcher through its rule
        memory = profile.memory_mb["webhooks"]
        invocations["webhooks"] += published
        gb_seconds += published * billed_ms(profile.webhooks, memory) / 1000 * memory / 1024
        read_units += published * profile.webhooks.read_units
    reminders = 0.0
    if profile.notification_event is not None and profile.reminder is not None:
        memory = profile.memory_mb["notifications"]
        notified = sum(count for name, count in calls.items() if name in NOTIFIED)
        reminders = calls.get("POST /bookings", 0.0)  # each booking's one reminder fires (a cancel's is deleted)
        for operation, count in ((profile.notification_event, notified), (profile.reminder, reminders)):
            invocations["notifications"] += count
            gb_seconds += count * billed_ms(operation, memory) / 1000 * memory / 1024
            read_units += count * operation.read_units
            write_units += count * operation.write_units
    if profile.waitlist_match is not None:
        freeing = sum(count for name, count in calls.items() if name in FREES_TIME)
        match, memory = profile.waitlist_match, profile.memory_mb["waitlist"]
        invocations["waitlist"] += freeing
        gb_seconds += freeing * billed_ms(match, memory) / 1000 * memory / 1024
        read_units += freeing * match.read_units
    sweeps = SWEEPS_PER_MONTH if profile.waitlist_sweep is not None else 0.0
    # Cold starts by each function's every invocation (the sweeps keep the waitlist function warm);
    # the share of the waitlist's that the sweeps bring is the sweep's own (fixed) line.
    started = {**invocations, "waitlist": invocations["waitlist"] + sweeps}
    cold_starts = {function: count * cold_start_share(started[function]) for function, count in invocations.items()}
    sweep_cold_starts = sweeps * cold_start_share(started["waitlist"])
    init_gb_seconds = sum(
        starts
        * init_billed_ms(profile.init_ms[function], profile.memory_mb[function])
        / 1000
        * profile.memory_mb[function]
        / 1024
        for function, starts in cold_starts.items()
        if function in profile.init_ms
    )
    # Storage at the month's end: each booking and its audit record, at most a KB per unit written
    # (transactions bill twice per item, so half the units are bytes).
    table_gb = bookings * (profile.operations["POST /bookings"].write_units + profile.audit.write_units) / 2 / 1e6
    archive_puts = changes * profile.audit.aws_calls.count("s3.PutObject")
    archive_gb = changes * profile.archive_bytes_per_change / 1e9
    logs_gb = (
        sum(count * profile.log_bytes_per_invocation.get(function, 0.0) for function, count in invocations.items())
        + api_requests * profile.access_log_bytes_per_request
    ) / 1e9
    traces = sampled_traces(
        api_requests
        + invocations["audit"]
        + invocations["waitlist"]
        + invocations["publisher"]
        + invocations["webhooks"]
        + invocations["notifications"],
        traffic,
    )

    free, first_year = prices["free_tier"], prices["free_tier_first_12_months"]
    if not traffic.twelve_month_free_tier:
        first_year = dict.fromkeys(first_year, 0)
    lam, api, ddb, s3, cw, xray = (prices[k] for k in ("lambda", "api_gateway", "dynamodb", "s3", "cloudwatch", "xray"))
    bus = prices["eventbridge"]
    waf = prices["waf"]
    million = 1e6
    sweep_lines = []
    if profile.waitlist_sweep is not None:
        sweep, memory = profile.waitlist_sweep, profile.memory_mb["waitlist"]
        sweep_gb_seconds = sweeps * billed_ms(sweep, memory) / 1000 * memory / 1024
        if "waitlist" in profile.init_ms:
            sweep_gb_seconds += (
                sweep_cold_starts * init_billed_ms(profile.init_ms["waitlist"], memory) / 1000 * memory / 1024
            )
        sweep_logs_gb = sweeps * profile.log_bytes_per_invocation.get("waitlist", 0.0) / 1e9
        # Traces: one a minute is inside X-Ray's reservoir (one a second), so every sweep is recorded.
        sweep_traces = sweeps
        # The Free Tier's allowances go to the traffic's lines first, then to these.
        sweep_lines = [
            _line(
                "Lambda",
                "waitlist sweep, once a minute: requests",
                sweeps,
                "invocations",
                lam["requests_per_million"] / million,
                _free(free["lambda_requests"], sum(invocations.values())),
                fixed=True,
            ),
            _line(
                "Lambda",
                f"waitlist sweep: duration ({traffic.architecture})",
                sweep_gb_seconds,
                "GB-seconds",
                lam[f"gb_second_{traffic.architecture}"],
                _free(free["lambda_gb_seconds"], gb_seconds + init_gb_seconds),
                fixed=True,
            ),
            _line(
                "DynamoDB",
                "waitlist sweep: read request units",
                sweeps * sweep.read_units,
                "RRU",
                ddb["read_request_units_per_million"] / million,
                fixed=True,
            ),
            _line(
                "DynamoDB",
                "waitlist sweep: write request units (its lapses' mark)",
                sweeps * sweep.write_units,
                "WRU",
                ddb["write_request_units_per_million"] / million,
                fixed=True,
            ),
            _line(
                "EventBridge Scheduler",
                "invocations (the waitlist sweep)",
                sweeps,
                "invocations",
                prices["scheduler"]["invocations_per_million"] / million,
                _free(free["scheduler_invocations"], reminders),
                fixed=True,
            ),
            _line(
                "CloudWatch",
                "logs ingested (waitlist sweep)",
                sweep_logs_gb,
                "GB",
                cw["logs_ingested_gb"],
                _free(free["cloudwatch_logs_gb"], 2 * logs_gb),
                fixed=True,
            ),
            _line(
                "CloudWatch",
                "logs stored (waitlist sweep)",
                sweep_logs_gb,
                "GB",
                cw["logs_stored_gb_month"],
                _free(free["cloudwatch_logs_gb"], 2 * logs_gb + sweep_logs_gb),
                fixed=True,
            ),
            _line(
                "X-Ray",
                "traces recorded (waitlist sweep)",
                sweep_traces,
                "traces",
                xray["traces_recorded_per_million"] / million,
                _free(free["xray_traces_recorded"], traces),
                fixed=True,
            ),
        ]
    traffic_lines = [
        _line(
            "Lambda",
            "requests",
            sum(invocations.values()),
            "invocations",
            lam["requests_per_million"] / million,
            free["lambda_requests"],
        ),
        _line(
            "Lambda",
            f"duration ({traffic.architecture})",
            gb_seconds,
            "GB-seconds",
            lam[f"gb_second_{traffic.architecture}"],
            free["lambda_gb_seconds"],
        ),
        # INIT shares the duration price and the Free Tier's GB-seconds, after the invocations' own.
        _line(
            "Lambda",
            f"INIT duration ({_quantity(sum(cold_starts.values()))} cold starts)",
            init_gb_seconds,
            "GB-seconds",
            lam[f"gb_second_{traffic.architecture}"],
            _free(free["lambda_gb_seconds"], gb_seconds),
        ),
        _line(
            "API Gateway",
            "REST requests",
            api_requests,
            "requests",
            api["rest_requests_per_million"] / million,
            first_year["api_gateway_rest_requests"],
        ),
        # WAF has no Free Tier; it inspects every request before API Gateway does.
        _line("WAF", "web ACL", profile.waf_web_acls, "web ACLs", waf["web_acl_month"], fixed=True),
        _line("WAF", "rules", profile.waf_rules, "rules", waf["rule_month"], fixed=True),
        _line("WAF", "requests inspected", api_requests, "requests", waf["requests_per_million"] / million),
        _line(
            "EventBridge Scheduler",
            "invocations (each booking's reminder)",
            reminders,
            "invocations",
            prices["scheduler"]["invocations_per_million"] / million,
            free["scheduler_invocations"],
        ),
        # Custom events have no Free Tier; rules delivering them to Lambda cost nothing more.
        _line(
            "EventBridge",
            "domain events published",
            published,
            "events",
            bus["custom_events_per_million"] / million,
        ),
        # On-demand capacity has no Free Tier.
        _line(
            "DynamoDB",
            "on-demand write request units",
            write_units,
            "WRU",
            ddb["write_request_units_per_million"] / million,
        ),
        _line(
            "DynamoDB",
            "on-demand read request units",
            read_units,
            "RRU",
            ddb["read_request_units_per_million"] / million,
        ),
        _line(
            "DynamoDB",
            "storage added (month's end)",
            table_gb,
            "GB",
            ddb["storage_gb_month"],
            free["dynamodb_storage_gb"],
        ),
        _line(
            "S3",
            "audit archive PUTs",
            archive_puts,
            "requests",
            s3["put_requests_per_thousand"] / 1000,
            first_year["s3_put_requests"],
        ),
        _line(
            "S3",
            "audit archive storage added",
            archive_gb,
            "GB",
            s3["standard_storage_gb_month"],
            first_year["s3_standard_storage_gb"],
        ),
        _line("CloudWatch", "logs ingested", logs_gb, "GB", cw["logs_ingested_gb"], free["cloudwatch_logs_gb"]),
        # The Free Tier's 5 GB covers ingestion and storage together: storage gets what ingestion left.
        _line(
            "CloudWatch",
            "logs stored (a month's worth)",
            logs_gb,
            "GB",
            cw["logs_stored_gb_month"],
            _free(free["cloudwatch_logs_gb"], logs_gb),
        ),
        _line(
            "CloudWatch",
            "custom metrics (EMF)",
            profile.custom_metrics,
            "metrics",
            cw["custom_metric_month"],
            free["cloudwatch_custom_metrics"],
            fixed=True,
        ),
        _line(
            "CloudWatch",
            "alarms (metrics evaluated)",
            profile.alarm_metrics,
            "alarm metrics",
            cw["alarm_metric_month"],
            free["cloudwatch_alarm_metrics"],
            fixed=True,
        ),
        _line(
            "CloudWatch",
            "composite alarms",
            profile.composite_alarms,
            "alarms",
            cw["composite_alarm_month"],
            fixed=True,
        ),
        _line(
            "CloudWatch",
            "dashboard",
            profile.dashboards,
            "dashboards",
            cw["dashboard_month"],
            free["cloudwatch_dashboards"],
            fixed=True,
        ),
        _line(
            "X-Ray",
            "traces recorded",
            traces,
            "traces",
            xray["traces_recorded_per_million"] / million,
            free["xray_traces_recorded"],
        ),
    ]
    return traffic_lines + sweep_lines


def provisioned_alternative(profile: Profile, traffic: Traffic, prices: dict[str, Any]) -> dict[str, Any]:
    """TableBillingMode=PROVISIONED: capacity for the peak, and what the template's free-tier sizing sustains."""
    per_booking_reads = sum(n * profile.operations[op].read_units for op, n in traffic.mix.items())
    per_booking_writes = sum(n * profile.operations[op].write_units for op, n in traffic.mix.items())
    audited = sum(n for op, n in traffic.mix.items() if op in AUDITED)
    per_booking_reads += audited * profile.audit.read_units
    per_booking_writes += audited * profile.audit.write_units
    peak = traffic.bookings_per_month / SECONDS_PER_MONTH * traffic.peak_to_average
    rcu, wcu = max(3, math.ceil(peak * per_booking_reads)), max(3, math.ceil(peak * per_booking_writes))
    ddb, free = prices["dynamodb"], prices["free_tier"]
    usd = HOURS_PER_MONTH * (rcu * ddb["rcu_hour"] + wcu * ddb["wcu_hour"])
    usd_free = HOURS_PER_MONTH * (
        _free(rcu, free["dynamodb_provisioned_rcu"]) * ddb["rcu_hour"]
        + _free(wcu, free["dynamodb_provisioned_wcu"]) * ddb["wcu_hour"]
    )
    sustained = min(
        free["dynamodb_provisioned_rcu"] / per_booking_reads, free["dynamodb_provisioned_wcu"] / per_booking_writes
    )
    return {
        "peakBookingsPerSecond": round(peak, 4),
        "rcu": rcu,
        "wcu": wcu,
        "usd": round(usd, 2),
        "usdFreeTier": round(usd_free, 2),
        "freeTierSustainsBookingsPerSecond": round(sustained, 2),
    }


def totals(lines: list[Line]) -> dict[str, float]:
    return {
        "usd": round(sum(line.usd for line in lines), 2),
        "usdFreeTier": round(sum(line.usd_free_tier for line in lines), 2),
        "usdTrafficOnly": round(sum(line.usd for line in lines if not line.fixed), 2),
    }


def report(profile: Profile, traffic: Traffic, prices: dict[str, Any] | None = None) -> dict[str, Any]:
    """The month at the traffic's volume, a million bookings, and a few volumes side by side."""
    prices = prices or load_prices()
    lines = estimate(profile, traffic, prices)
    million = totals(estimate(profile, replace(traffic, bookings_per_month=1_000_000), prices))
    volumes = []
    for bookings in (1_000, 10_000, 100_000, 1_000_000, 10_000_000):
        month = totals(estimate(profile, replace(traffic, bookings_per_month=bookings), prices))
        volumes.append({"bookingsPerMonth": bookings, **month, "usdPerBooking": month["usd"] / bookings})
    return {
        "region": prices["region"],
        "pricesChecked": prices["checked"],
        "bookingsPerMonth": traffic.bookings_per_month,
        "architecture": traffic.architecture,
        "mix": traffic.mix,
        "lines": [line.__dict__ for line in lines],
        "month": totals(lines),
        "perMillionBookings": million["usdTrafficOnly"],
        "volumes": volumes,
        "provisioned": provisioned_alternative(profile, traffic, prices),
        "billedMs": {
            name: billed_ms(operation, profile.memory_mb[operation.function])
            for name, operation in [*profile.operations.items(), (AUDIT_CAPACITY, profile.audit)]
            if name in traffic.mix or name == AUDIT_CAPACITY
        },
        "auditInvocationsPerChange": {
            "filtered": profile.audit_invocations_per_change,
            "unfiltered": profile.audit_invocations_per_change_unfiltered,
        },
        "initBilledMs": {
            function: init_billed_ms(ms, profile.memory_mb[function]) for function, ms in profile.init_ms.items()
        },
    }


# -- what the model is fed ----------------------------------------------------------------------------


def template_facts() -> dict[str, Any]:
    """Memory per function, alarms and the metrics they evaluate, and the custom metrics emitted."""
    from deploy.templates import TEMPLATES, load_template, resources_of_type
    from loadtests.bench_cold_start import template_parameters
    from local.cloudwatch.alarms import load_alarms
    from local.lambda_runtime.functions import load_functions
    from services.common.observability import Metric

    parameters = template_parameters()
    memory = {spec.name.rsplit("-", 1)[1]: spec.memory_mb for spec in load_functions(parameters).values()}
    alarms = load_alarms(parameters)
    alarm_metrics = sum(
        max(1, sum("MetricStat" in row for row in alarm.properties.get("Metrics", [])))
        for alarm in alarms
        if not alarm.composite
    )
    custom = sum(len(API_FUNCTIONS) if metric.value in METRICS_IN_EVERY_FUNCTION else 1 for metric in Metric)
    api = load_template(TEMPLATES / "api.yaml")
    web_acls = resources_of_type(api, "AWS::WAFv2::WebACL").values()
    return {
        "wafWebAcls": len(web_acls),
        "wafRules": sum(len(acl["Properties"]["Rules"]) for acl in web_acls),
        "memoryMb": memory,
        "alarmMetrics": alarm_metrics,
        "compositeAlarms": sum(alarm.composite for alarm in alarms),
        "customMetrics": custom + len(memory),  # + ColdStart per function of the templates
    }


def init_by_function(cold_start_rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each function's measured cold start (ms, median) from the cold-start benchmark's rows, one per
    function (decision 0021). It is an upper bound of the INIT phase billed: it also holds the
    composition root and the first request, which are billed as the invocation's duration anyway."""
    found = {}
    for row in cold_start_rows:
        function = str(row["function"])
        if function in FUNCTIONS:
            found[function] = float(row["functionMs"])
    if "booking" in found:
        # The waitlist function, the publisher and the webhook dispatcher serve no request, so the
        # benchmark does not start them; each loads a subset of the booking function's modules (the
        # same code, without the API's), so the booking function's init bounds theirs.
        found.setdefault("waitlist", found["booking"])
        found.setdefault("publisher", found["booking"])  # the same: booking code, no API
        found.setdefault("webhooks", found["booking"])
        found.setdefault("notifications", found["booking"])
    missing = sorted(set(FUNCTIONS) - set(found))
    if missing:
        raise ValueError(f"the cold-start figures name no init for {missing}")
    return found


def profile_from(
    capacity: dict[str, Any],
    handler_cpu: list[dict[str, Any]],
    facts: dict[str, Any],
    cold_start_rows: list[dict[str, Any]],
) -> Profile:
    """Join the benchmarks' figures: by operation name, by function, and the recorded stream's."""
    units = {row["operation"]: row for row in capacity["operations"]}
    cpu = {row["case"]: row for row in handler_cpu}

    def operation(name: str, case: str) -> Operation:
        if name not in units or case not in cpu:
            raise ValueError(f"{name!r} was not measured by both benchmarks")
        row = units[name]
        return Operation(
            name,
            cpu[case]["function"],
            row["readUnits"],
            row["writeUnits"] + row["indexWriteUnits"],
            cpu[case]["cpuMs"],
            tuple(cpu[case]["awsCalls"]),
        )

    measured = {name: operation(name, name) for name in units if name in cpu}

    def waitlist_invocation(case: str, read_units: float, write_units: float = 0.0) -> Operation | None:
        """One of the waitlist function's invocations (not in older figures): its CPU and calls as
        measured, the Query of an empty line (and, for the sweep, its lapses' mark and markers) as its units."""
        if case not in cpu:
            return None
        row = cpu[case]
        return Operation(case, "waitlist", read_units, write_units, row["cpuMs"], tuple(row["awsCalls"]))

    logs = capacity["logBytes"]
    stream = capacity["stream"]
    low_traffic, events = stream["invocationsLowTraffic"], max(1, stream["events"])
    return Profile(
        operations=measured,
        audit=operation(AUDIT_CAPACITY, AUDIT_CASE),
        archive_bytes_per_change=float(cpu[AUDIT_CASE]["s3PutBytes"]),
        log_bytes_per_invocation={
            function: float(logs[f"{function}, per invocation"])
            for function in FUNCTIONS
            if f"{function}, per invocation" in logs
        },
        access_log_bytes_per_request=float(logs["api access log, per request"]),
        memory_mb=facts["memoryMb"],
        alarm_metrics=facts["alarmMetrics"],
        composite_alarms=facts["compositeAlarms"],
        custom_metrics=facts["customMetrics"],
        waf_web_acls=facts["wafWebAcls"],
        waf_rules=facts["wafRules"],
        audit_invocations_per_change=round(low_traffic["filtered"] / events, 3),
        audit_invocations_per_change_unfiltered=round(low_traffic["unfiltered"] / events, 3),
        init_ms=init_by_function(cold_start_rows),
        waitlist_sweep=waitlist_invocation(
            WAITLIST_SWEEP_CASE, EMPTY_LINE_READ_UNITS + LAPSE_SWEEP_READ_UNITS, LAPSE_SWEEP_WRITE_UNITS
        ),
        waitlist_match=waitlist_invocation(WAITLIST_MATCH_CASE, EMPTY_LINE_READ_UNITS),
        publisher=(
            Operation(
                PUBLISHER_CASE,
                "publisher",
                0.0,
                0.0,
                cpu[PUBLISHER_CASE]["cpuMs"],
                tuple(cpu[PUBLISHER_CASE]["awsCalls"]),
            )
            if PUBLISHER_CASE in cpu
            else None
        ),
        webhooks=(
            Operation(
                WEBHOOKS_CASE,
                "webhooks",
                WEBHOOKS_READ_UNITS,
                0.0,
                cpu[WEBHOOKS_CASE]["cpuMs"],
                tuple(cpu[WEBHOOKS_CASE]["awsCalls"]),
            )
            if WEBHOOKS_CASE in cpu
            else None
        ),
        notification_event=(
            Operation(
                NOTIFICATIONS_EVENT_CASE,
                "notifications",
                NOTIFICATIONS_READ_UNITS,
                NOTIFICATIONS_EVENT_WRITE_UNITS,
                cpu[NOTIFICATIONS_EVENT_CASE]["cpuMs"],
                tuple(cpu[NOTIFICATIONS_EVENT_CASE]["awsCalls"]),
            )
            if NOTIFICATIONS_EVENT_CASE in cpu
            else None
        ),
        reminder=(
            Operation(
                NOTIFICATIONS_REMINDER_CASE,
                "notifications",
                NOTIFICATIONS_READ_UNITS,
                0.0,
                cpu[NOTIFICATIONS_REMINDER_CASE]["cpuMs"],
                tuple(cpu[NOTIFICATIONS_REMINDER_CASE]["awsCalls"]),
            )
            if NOTIFICATIONS_REMINDER_CASE in cpu
            else None
        ),
    )


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def markdown(result: dict[str, Any]) -> str:
    bookings = result["bookingsPerMonth"]
    lines = [
        f"{bookings:,.0f} bookings a month, {result['region']}, Lambda on {result['architecture']}, prices of"
        f" {result['pricesChecked']}. Calls per booking: "
        + ", ".join(f"{name} {count:g}" for name, count in result["mix"].items())
        + ".",
        "",
        "| service | item | quantity a month | USD | USD with the Free Tier |",
        "|---|---|---:|---:|---:|",
    ]
    for line in result["lines"]:
        lines.append(
            f"| {line['service']} | {line['item']} | {_quantity(line['quantity'])} {line['unit']}"
            f" | {line['usd']:,.2f} | {line['usd_free_tier']:,.2f} |"
        )
    month = result["month"]
    lines += [
        f"| **total** | | | **{month['usd']:,.2f}** | **{month['usdFreeTier']:,.2f}** |",
        "",
        "**Per million bookings** (what the traffic itself costs, no Free Tier):"
        f" **USD {result['perMillionBookings']:,.2f}**.",
        "",
        "| bookings a month | USD | USD with the Free Tier | USD per booking |",
        "|---:|---:|---:|---:|",
    ]
    for row in result["volumes"]:
        lines.append(
            f"| {row['bookingsPerMonth']:,} | {row['usd']:,.2f} | {row['usdFreeTier']:,.2f}"
            f" | {row['usdPerBooking']:.6f} |"
        )
    provisioned = result["provisioned"]
    lines += [
        "",
        f"With TableBillingMode=PROVISIONED, sized for {provisioned['peakBookingsPerSecond']} bookings/s at peak"
        f" ({provisioned['rcu']} RCU, {provisioned['wcu']} WCU across the tables and their indexes), DynamoDB would"
        f" cost USD {provisioned['usd']:,.2f} a month (USD {provisioned['usdFreeTier']:,.2f} with the Free Tier)"
        " instead of the on-demand lines above. The template's free-tier sizing (25 RCU and 25 WCU in all,"
        " across both tables)"
        f" sustains at most {provisioned['freeTierSustainsBookingsPerSecond']} bookings/s of this mix.",
        "",
        "Billed milliseconds per invocation: "
        + ", ".join(f"{name} {ms}" for name, ms in result["billedMs"].items())
        + ". Per INIT: "
        + ", ".join(f"{function} {ms}" for function, ms in result["initBilledMs"].items())
        + ".",
        "",
        f"Audit invocations per audited change, from the recorded stream at low traffic:"
        f" {result['auditInvocationsPerChange']['filtered']:g} with the mapping's filter"
        f" ({result['auditInvocationsPerChange']['unfiltered']:g} without it).",
    ]
    return "\n".join(lines) + "\n"


def parse_mix(text: str) -> dict[str, float]:
    """`"GET /providers/{id}/slots=5, POST /bookings=1"` → the default mix with those calls per booking changed."""
    mix = dict(DEFAULT_MIX)
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, value = part.rpartition("=")
        if not name or name not in DEFAULT_MIX:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r}; known: {', '.join(DEFAULT_MIX)}")
        mix[name] = float(value)
    return mix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=float, default=100_000, help="bookings a month (default 100,000)")
    parser.add_argument("--mix", type=parse_mix, default=dict(DEFAULT_MIX), help="calls per booking to change")
    parser.add_argument("--architecture", choices=["arm64", "x86_64"], default="arm64")
    parser.add_argument("--twelve-months", action="store_true", help="count the first-12-months Free Tier offers")
    parser.add_argument("--from", dest="source", type=Path, help="a `make bench` results.json to price")
    args = parser.parse_args(argv)
    if args.source:
        results = json.loads(args.source.read_text())
        capacity, handler_cpu = results["capacity"], results["handlerCpu"]
        cold_start_rows = results["coldStart"]["rows"]
    else:
        from loadtests import bench, bench_capacity, bench_handler_cpu

        capacity, handler_cpu = bench_capacity.measure(2), bench_handler_cpu.measure(3, 20)
        cold_start_rows = bench.cold_start(3)["rows"]
    profile = profile_from(capacity, handler_cpu, template_facts(), cold_start_rows)
    traffic = Traffic(args.bookings, args.mix, args.architecture, twelve_month_free_tier=args.twelve_months)
    print(markdown(report(profile, traffic)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
