"""The cost model's arithmetic (loadtests/cost.py) against hand-computed cases, and its inputs: the
prices file and the facts it reads from the templates."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from loadtests import cost
from loadtests.cost import AUDIT_CAPACITY, Line, Operation, Profile, Traffic

PRICES = cost.load_prices()


def profile() -> Profile:
    book = Operation("POST /bookings", "booking", 1.0, 12.0, 2.0, ("dynamodb.Query", "dynamodb.TransactWriteItems"))
    search = Operation("GET /providers/{id}/slots", "availability", 0.5, 0.0, 3.0, ("dynamodb.Query",))
    audit = Operation(
        AUDIT_CAPACITY, "audit", 1.0, 6.0, 3.0, ("dynamodb.GetItem", "dynamodb.TransactWriteItems", "s3.PutObject")
    )
    return Profile(
        operations={book.name: book, search.name: search},
        audit=audit,
        archive_bytes_per_change=500,
        log_bytes_per_invocation={"availability": 1000, "booking": 2000, "audit": 3000},
        access_log_bytes_per_request=500,
        memory_mb={"availability": 512, "booking": 512, "audit": 512},
        alarm_metrics=30,
        composite_alarms=2,
        custom_metrics=22,
        init_ms={"availability": 300.0, "booking": 300.0, "audit": 200.0},
    )


def traffic(bookings: float) -> Traffic:
    return Traffic(bookings, {"POST /bookings": 1.0, "GET /providers/{id}/slots": 2.0})


def line(lines: list[Line], item: str) -> Line:
    return next(found for found in lines if found.item.startswith(item))


def test_a_function_is_billed_its_cpu_at_its_memorys_share_of_a_vcpu_plus_its_waits_on_aws() -> None:
    book = profile().operations["POST /bookings"]
    # 2 ms of CPU at 512 MB (1769/512 of a vCPU's time) + a Query (6) + a transaction (15), rounded up
    assert cost.billed_ms(book, 512) == math.ceil(2.0 * 1769 / 512 + 6 + 15) == 28
    assert cost.billed_ms(book, 3008) == math.ceil(2.0 + 21)  # above one vCPU a single thread gets no faster
    assert cost.billed_ms(Operation("x", "booking", 0, 0, 0.01, ()), 1769) == 1  # never under a millisecond


def test_the_months_lines_follow_from_the_measured_profile_and_the_prices() -> None:
    lines = cost.estimate(profile(), traffic(100_000), PRICES)
    api_requests, changes = 300_000, 100_000
    assert line(lines, "REST requests").quantity == api_requests
    assert line(lines, "REST requests").usd == pytest.approx(api_requests / 1e6 * 3.50)
    assert line(lines, "requests").quantity == api_requests + changes  # the audit consumer: a batch per change
    gb_seconds = (
        100_000 * 28 + 200_000 * math.ceil(3 * 1769 / 512 + 6) + 100_000 * math.ceil(3 * 1769 / 512 + 49)
    ) * 0.5
    assert line(lines, "duration").quantity == pytest.approx(gb_seconds / 1000)
    assert line(lines, "duration").usd == pytest.approx(gb_seconds / 1000 * 0.0000133334)
    writes = line(lines, "on-demand write")
    assert writes.quantity == 100_000 * 12 + 100_000 * 6
    assert writes.usd == writes.usd_free_tier == pytest.approx(1.8 * 0.625)  # on demand has no free tier
    assert line(lines, "audit archive PUTs").quantity == changes
    logs = (100_000 * 2000 + 200_000 * 1000 + 100_000 * 3000 + api_requests * 500) / 1e9
    assert line(lines, "logs ingested").quantity == pytest.approx(logs)
    assert line(lines, "traces recorded").quantity == pytest.approx(api_requests + changes)  # under 1/s: all sampled


def test_audit_invocations_follow_the_recorded_streams_deliveries_per_change() -> None:
    # Given a stream that took 1.5 deliveries per change (the work per change unchanged)
    measured = replace(profile(), audit_invocations_per_change=1.5)
    lines, base = cost.estimate(measured, traffic(100_000), PRICES), cost.estimate(profile(), traffic(100_000), PRICES)
    assert line(lines, "requests").quantity == 300_000 + 1.5 * 100_000
    assert line(lines, "duration").quantity == line(base, "duration").quantity


def test_a_cold_start_is_at_least_one_percent_of_invocations_and_most_of_them_when_sparse() -> None:
    assert cost.cold_start_share(10_000_000) == cost.COLD_START_FLOOR  # ~4 a second: environments stay warm
    sparse = 1_000  # one every 44 minutes: most arrive after the environment idled out
    assert cost.cold_start_share(sparse) == pytest.approx(math.exp(-sparse / cost.SECONDS_PER_MONTH * 600))
    assert cost.cold_start_share(sparse) > 0.7


def test_init_is_billed_per_cold_start_at_the_functions_memory_and_the_duration_price() -> None:
    lines = cost.estimate(profile(), traffic(100_000), PRICES)
    invocations = {"booking": 100_000, "availability": 200_000, "audit": 100_000}
    # 300 ms measured on a full core is 1037 ms at 512 MB (1769/512 of a vCPU); audit's 200 ms is 692
    billed = {"booking": 1037, "availability": 1037, "audit": 692}
    assert cost.init_billed_ms(300, 512) == 1037 and cost.init_billed_ms(200, 512) == 692
    gb_seconds = sum(n * cost.cold_start_share(n) * billed[f] / 1000 * 0.5 for f, n in invocations.items())
    init = line(lines, "INIT duration")
    assert init.quantity == pytest.approx(gb_seconds)
    assert init.usd == pytest.approx(gb_seconds * 0.0000133334)
    assert "4,000 cold starts" in init.item  # 1 % of 400,000 invocations
    # the Free Tier's GB-seconds cover the invocations first, then INIT
    assert init.usd_free_tier == 0


def test_the_init_figures_are_read_from_the_cold_start_benchmarks_rows() -> None:
    # one row per function, as loadtests/bench_cold_start.py makes them (decision 0021)
    rows = [
        {"function": "availability", "functionMs": 301.5, "baselineMs": 210.0},
        {"function": "booking", "functionMs": 320.0, "baselineMs": 212.0},
        {"function": "audit", "functionMs": 280.0, "baselineMs": 230.0},
    ]
    # the waitlist function, the publisher and the webhook dispatcher are not started by the benchmark:
    # the booking function's init bounds theirs
    assert cost.init_by_function(rows) == {
        "availability": 301.5,
        "booking": 320.0,
        "waitlist": 320.0,
        "publisher": 320.0,
        "webhooks": 320.0,
        "notifications": 320.0,
        "audit": 280.0,
    }
    with pytest.raises(ValueError, match="audit"):
        cost.init_by_function(rows[:2])


def test_the_free_tier_takes_its_allowance_off_each_line_and_never_goes_below_zero() -> None:
    lines = cost.estimate(profile(), traffic(1_000), PRICES)
    assert line(lines, "requests").usd > 0 and line(lines, "requests").usd_free_tier == 0
    assert line(lines, "custom metrics").usd_free_tier == pytest.approx((22 - 10) * 0.30)
    assert line(lines, "alarms").usd_free_tier == pytest.approx((30 - 10) * 0.10)
    assert line(lines, "dashboard").usd_free_tier == 0  # three are free
    assert line(lines, "REST requests").usd_free_tier == line(lines, "REST requests").usd  # a 12-month offer
    first_year = cost.estimate(profile(), replace(traffic(1_000), twelve_month_free_tier=True), PRICES)
    assert line(first_year, "REST requests").usd_free_tier == 0
    assert all(0 <= found.usd_free_tier <= found.usd for found in lines + first_year)


def test_x_ray_records_the_reservoir_then_five_percent() -> None:
    month = cost.SECONDS_PER_MONTH
    assert cost.sampled_traces(0.5 * month, Traffic()) == pytest.approx(0.5 * month)
    assert cost.sampled_traces(21 * month, Traffic()) == pytest.approx((1 + 0.05 * 20) * month)


def test_a_million_bookings_price_only_what_the_traffic_costs() -> None:
    result = cost.report(profile(), traffic(100_000), PRICES)
    at_a_million = cost.estimate(profile(), traffic(1_000_000), PRICES)
    assert result["perMillionBookings"] == pytest.approx(sum(x.usd for x in at_a_million if not x.fixed), abs=0.01)
    fixed = sum(x.usd for x in at_a_million if x.fixed)
    web_acl_and_its_rules = 5.00 + 3 * 1.00
    assert fixed == pytest.approx(22 * 0.30 + 30 * 0.10 + 2 * 0.50 + 3.00 + web_acl_and_its_rules)
    totals = [row["usd"] for row in result["volumes"]]
    assert totals == sorted(totals)  # more bookings never cost less


def test_provisioned_capacity_is_sized_for_the_peak_and_the_free_tier_sizing_has_a_ceiling() -> None:
    result = cost.provisioned_alternative(profile(), traffic(2_628_000), PRICES)  # one booking a second
    # per booking: reads 1 + 2 * 0.5 + audit 1 = 3; writes 12 + audit 6 = 18; peak is 10x the average
    assert (result["rcu"], result["wcu"]) == (30, 180)
    assert result["usd"] == pytest.approx(730 * (30 * 0.00013 + 180 * 0.00065), abs=0.01)
    assert result["freeTierSustainsBookingsPerSecond"] == pytest.approx(25 / 18, abs=0.01)


def test_a_mix_naming_an_operation_nobody_measured_is_refused() -> None:
    with pytest.raises(ValueError, match="not measured"):
        cost.estimate(profile(), Traffic(1, {"DELETE /everything": 1}), PRICES)
    assert cost.parse_mix("GET /providers/{id}/slots=5")["GET /providers/{id}/slots"] == 5
    with pytest.raises(Exception, match="unknown operation"):
        cost.parse_mix("GET /nowhere=1")


def test_every_price_names_its_public_source() -> None:
    sections = {name: value for name, value in PRICES.items() if isinstance(value, dict)}
    assert {"lambda", "api_gateway", "dynamodb", "s3", "cloudwatch", "xray", "free_tier"} <= set(sections)
    for name, section in sections.items():
        assert str(section["source"]).startswith("https://aws.amazon.com/"), name
        assert all(value >= 0 for key, value in section.items() if key != "source"), name


def test_the_templates_give_memory_alarms_and_metrics() -> None:
    facts = cost.template_facts()
    assert facts["memoryMb"] == {
        "availability": 512,
        "booking": 512,
        "publisher": 512,
        "waitlist": 512,
        "webhooks": 512,
        "notifications": 256,
        "audit": 512,
        "backup": 256,
    }
    assert facts["compositeAlarms"] == 2
    assert facts["alarmMetrics"] >= 23  # at least one metric per metric alarm; metric math evaluates more
    # 25, then WaitlistJoined, WaitlistOffered, WaitlistExpired and its ColdStart; EventsPublished,
    # EventPublishFailures and the publisher's ColdStart; the six Webhook* metrics and the dispatcher's
    # ColdStart; CalendlyRejected and ExternalConflict; the four Notification/Reminder metrics and the
    # notifications function's ColdStart; BackupAge, BackupExportFailed and the backup function's ColdStart
    assert facts["customMetrics"] == 49
    assert (facts["wafWebAcls"], facts["wafRules"]) == (1, 3)


def test_log_volumes_are_bytes_per_request_and_per_invocation_counted_by_the_platform_start_lines(tmp_path) -> None:
    from loadtests.bench_capacity import log_bytes

    (tmp_path / "api-access.log").write_bytes(b"x" * 99 + b"\n" + b"y" * 199 + b"\n")
    start = b'{"time": "t", "type": "platform.start", "record": {}}'
    lines = [start, b"a" * 100, b"b" * 50, start, b"c" * 20]
    (tmp_path / "appointments-local-booking.log").write_bytes(b"\n".join(lines) + b"\n")
    assert log_bytes(tmp_path) == {
        "api access log, per request": 149,
        "booking, per invocation": round((2 * len(start) + 170) / 2),
    }


def test_the_waitlist_costs_a_sweep_a_minute_whatever_the_traffic_and_a_match_per_change_that_frees_time() -> None:
    sweep = Operation(cost.WAITLIST_SWEEP_CASE, "waitlist", 0.5, 0.0, 1.0, ("dynamodb.Query",))
    match = Operation(cost.WAITLIST_MATCH_CASE, "waitlist", 0.5, 0.0, 1.0, ("dynamodb.Query",))
    cancel = Operation("POST /bookings/{id}/cancel", "booking", 1.0, 4.0, 2.0, ("dynamodb.TransactWriteItems",))
    base = profile()
    measured = replace(
        base,
        operations={**base.operations, cancel.name: cancel},
        memory_mb={**base.memory_mb, "waitlist": 512},
        log_bytes_per_invocation={**base.log_bytes_per_invocation, "waitlist": 400},
        waitlist_sweep=sweep,
        waitlist_match=match,
    )
    mix = Traffic(100_000, {"POST /bookings": 1.0, "POST /bookings/{id}/cancel": 0.4})
    with_it = cost.estimate(measured, mix, PRICES)
    sweeps = 730 * 60
    billed = math.ceil(1.0 * 1769 / 512 + 6)  # CPU at 512 MB's share, plus the Query's wait
    assert line(with_it, "waitlist sweep, once a minute").quantity == sweeps
    assert line(with_it, "waitlist sweep, once a minute").fixed
    assert line(with_it, "waitlist sweep: duration").quantity == pytest.approx(sweeps * billed / 1000 * 0.5)
    assert line(with_it, "waitlist sweep: read").quantity == sweeps * 0.5
    scheduler = line(with_it, "invocations (the waitlist sweep)")
    assert (
        scheduler.quantity == sweeps and scheduler.usd == pytest.approx(sweeps / 1e6) and scheduler.usd_free_tier == 0
    )
    # each cancel is one more invocation of the waitlist function, in the traffic's lines
    traffic_only = cost.estimate(replace(measured, waitlist_match=None, waitlist_sweep=None), mix, PRICES)
    assert line(with_it, "requests").quantity - line(traffic_only, "requests").quantity == 40_000
    assert line(with_it, "on-demand read").quantity - line(traffic_only, "on-demand read").quantity == 40_000 * 0.5
    # and a million bookings' price is the traffic's: the sweep is in the fixed lines
    assert cost.totals(with_it)["usdTrafficOnly"] < cost.totals(with_it)["usd"]


def test_each_change_costs_a_publisher_invocation_and_an_event_on_the_bus() -> None:
    publish = Operation(cost.PUBLISHER_CASE, "publisher", 0.0, 0.0, 1.0, ("eventbridge.PutEvents",))
    base = profile()
    measured = replace(base, memory_mb={**base.memory_mb, "publisher": 512}, publisher=publish)
    mix = traffic(100_000)  # one change per booking: POST /bookings
    with_it, without = cost.estimate(measured, mix, PRICES), cost.estimate(base, mix, PRICES)
    events = line(with_it, "domain events published")
    assert events.quantity == 100_000 and events.usd == pytest.approx(0.10) and events.usd_free_tier == events.usd
    assert line(without, "domain events published").quantity == 0
    assert line(with_it, "requests").quantity - line(without, "requests").quantity == 100_000
    billed = math.ceil(1.0 * 1769 / 512 + 20)  # CPU at 512 MB's share, plus the PutEvents' wait
    seconds = line(with_it, "duration").quantity - line(without, "duration").quantity
    assert seconds == pytest.approx(100_000 * billed / 1000 * 0.5)


def test_each_published_event_costs_a_dispatcher_invocation_and_its_subscribers_lookup() -> None:
    """Its rule hears every domain event: a stage with no subscription pays the lookup for each."""
    publish = Operation(cost.PUBLISHER_CASE, "publisher", 0.0, 0.0, 1.0, ("eventbridge.PutEvents",))
    dispatch = Operation(cost.WEBHOOKS_CASE, "webhooks", 1.0, 0.0, 2.0, ("dynamodb.Query", "dynamodb.Query"))
    base = profile()
    memory = {**base.memory_mb, "publisher": 512, "webhooks": 512}
    publishing = replace(base, memory_mb=memory, publisher=publish)
    dispatching = replace(publishing, webhooks=dispatch)
    mix = traffic(100_000)  # one change per booking: POST /bookings
    with_it, without = cost.estimate(dispatching, mix, PRICES), cost.estimate(publishing, mix, PRICES)
    assert line(with_it, "requests").quantity - line(without, "requests").quantity == 100_000
    billed = math.ceil(2.0 * 1769 / 512 + 2 * 6)  # CPU at 512 MB's share, plus the two Queries' waits
    seconds = line(with_it, "duration").quantity - line(without, "duration").quantity
    assert seconds == pytest.approx(100_000 * billed / 1000 * 0.5)
    assert sum(x.quantity for x in with_it if "read" in x.item) > sum(x.quantity for x in without if "read" in x.item)


def test_a_requests_units_leave_out_the_functions_that_continue_its_trace() -> None:
    """The notifications function, the webhook dispatcher and the waitlist hear of a change through
    the bus and continue its request's trace; each is priced by a case of its own, so their calls
    must not be counted a second time as the request's."""
    from loadtests.bench_capacity import per_operation

    def entry(caller: str, operation: str, reads: float, writes: float, trace: str = "t1") -> dict[str, Any]:
        return {
            "operation": operation,
            "trace_id": trace,
            "read_units": reads,
            "write_units": writes,
            "index_write_units": 0.0,
            "caller": caller,
        }

    ledger = [
        entry("appointments-bench-booking", "Query", 1.0, 0.0),
        entry("appointments-bench-booking", "TransactWriteItems", 0.0, 10.0),
        entry("appointments-bench-notifications", "GetItem", 1.0, 0.0),
        entry("appointments-bench-notifications", "UpdateItem", 0.0, 1.0),
        entry("appointments-bench-webhooks", "Query", 0.5, 0.0),
        entry("appointments-bench-audit", "TransactWriteItems", 0.0, 4.0, trace="t9"),
    ]
    booking, audit = per_operation({"POST /bookings": ["t1"]}, ledger)
    assert (booking["dynamodbRequests"], booking["readUnits"], booking["writeUnits"]) == (2, 1.0, 10.0)
    assert (audit["calls"], audit["writeUnits"]) == (1, 4.0)


def test_make_bench_cold_start_prints_its_table_writes_its_report_and_ends_with_the_worst_ratio(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench-smoke` measures the cold start once, through `bench --quick`; the command's own main is
    held here, on a measurement made up of one function."""
    from loadtests import bench_cold_start

    row = {
        "function": "booking",
        "firstRequest": "POST /bookings",
        "functionMs": 360.0,
        "baselineMs": 240.0,
        "ratio": 1.5,
        "ratioByRound": 1.48,
        "cpuRatio": 1.45,
        "librariesMs": 300.0,
        "librariesRatio": 1.25,
    }
    measured = {"runs": 1, "python": "3.13", "goalRatio": 1.5, "worstRatio": 1.5, "rows": [row]}
    monkeypatch.setattr(bench_cold_start, "measure", lambda runs: measured)
    monkeypatch.setattr(bench_cold_start, "REPORTS", tmp_path)
    (tmp_path / "layer" / "boto3").mkdir(parents=True)  # the layer it measures against, as `make` builds it
    monkeypatch.setattr(bench_cold_start, "LAYER", tmp_path / "layer")
    assert bench_cold_start.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| booking: POST /bookings | 360.0 | 240.0 | 1.500 | 1.450 | 1.480 | 300.0 | 1.250 |" in out
    assert out.rstrip().endswith("worst: 1.500x (first request, composition root included)")
    (report,) = tmp_path.glob("bench-cold-start-*-quick.json")
    assert json.loads(report.read_text())["rows"] == [row]
    measured["worstRatio"] = 1.6
    assert bench_cold_start.main([]) == 1  # a full run past the goal fails


def test_the_cold_start_verdict_is_the_medians_ratio_and_the_report_adds_it_round_by_round() -> None:
    """The verdict keeps the statistic the goal was set with (decision 0021): the function's median ÷ the
    baseline's. Beside it, each round's function ÷ the baseline of the same round, the median of those."""
    from pathlib import Path

    from loadtests.bench_cold_start import Pair

    pair = Pair("booking", "POST /bookings", Path("unused"), {}, [])
    pair.wall = {
        "baseline": [100.0, 200.0, 150.0],
        "function": [150.0, 300.0, 160.0],
        "libraries": [125.0, 250.0, 150.0],
    }
    assert pair.ratio(pair.wall) == 160.0 / 150.0
    assert pair.ratio(pair.wall, "libraries") == 1.0
    assert pair.ratio_by_round(pair.wall) == 1.5


def test_a_rounds_sides_run_back_to_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Round by round pairs each function's runs with its baseline's of the same round: they must run one
    after the other, every function's three sides in turn, round after round."""
    import sys
    from pathlib import Path

    from loadtests import bench_cold_start
    from loadtests.bench_cold_start import Pair

    pairs = [Pair(name, "GET /", Path("unused"), {}, []) for name in ("availability", "booking")]
    order: list[tuple[str, str]] = []

    def run_once(pair: Pair, side: str) -> tuple[float, float]:
        order.append((pair.function, side))
        return 100.0, 100.0

    monkeypatch.setattr(bench_cold_start, "prepare", lambda scratch: pairs)
    monkeypatch.setattr(bench_cold_start, "run_once", run_once)
    monkeypatch.setattr(bench_cold_start, "interpreter", lambda: sys.executable)
    bench_cold_start.measure(2)
    warm_up = [("availability", "function"), ("booking", "function")]
    one_round = [(pair.function, side) for pair in pairs for side in bench_cold_start.SIDES]
    assert bench_cold_start.SIDES[0] == "baseline"
    assert order == warm_up + one_round + one_round
