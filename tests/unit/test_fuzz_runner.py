"""make fuzz's figures (tests/fuzz/runner.py): the stateful phase's answers of each operation, read
from schemathesis's NDJSON report, and the run failing when it reached no booking it made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fuzz.runner import BOOKING_LIFECYCLE, REQUIRED, Figures, stateful_statuses


def scenario(phase: str, *steps: tuple[str, str, int | None]) -> str:
    """One ScenarioFinished event as schemathesis writes it: the recorder's cases and their responses,
    each step after the first fed by a link from the one before."""
    cases: dict[str, Any] = {}
    interactions: dict[str, Any] = {}
    for index, (method, path, status) in enumerate(steps):
        cases[f"c{index}"] = {"value": {"method": method, "path": path, "id": f"c{index}"}}
        if index:
            cases[f"c{index}"] |= {"parent_id": f"c{index - 1}", "is_transition_applied": index % 2 == 1}
        response = None if status is None else {"status_code": status, "headers": {}, "elapsed": 0.01}
        interactions[f"c{index}"] = {"request": {}, "response": response, "timestamp": 0}
    recorder = {"label": "Stateful tests", "cases": cases, "checks": {}, "interactions": interactions}
    return json.dumps({"ScenarioFinished": {"phase": phase, "status": "success", "recorder": recorder}})


def test_the_stateful_answers_are_counted_by_operation_and_status(tmp_path: Path) -> None:
    lines = [
        json.dumps({"Initialize": {"seed": 1}}),
        scenario(
            "stateful",
            ("POST", "/bookings", 201),
            ("POST", "/bookings/{bookingId}/cancel", 200),
            ("POST", "/bookings/{bookingId}/cancel", 404),
            ("POST", "/bookings/{bookingId}/no-show", None),  # a network error: no answer to count
        ),
        scenario("stateful", ("POST", "/bookings", 201), ("POST", "/bookings/{bookingId}/no-show", 422)),
        scenario("fuzzing", ("POST", "/bookings/{bookingId}/reschedule", 200)),  # not the stateful phase
    ]
    (tmp_path / "ndjson-1.ndjson").write_text("\n".join(lines) + "\n")
    statuses, linked, scenarios = stateful_statuses(tmp_path)
    assert scenarios == 2
    assert statuses == {
        "POST /bookings": {"201": 2},
        "POST /bookings/{bookingId}/cancel": {"200": 1, "404": 1},
        "POST /bookings/{bookingId}/no-show": {"422": 1},
    }
    assert linked == {"POST /bookings/{bookingId}/cancel": 1}  # the creates started their scenarios


def test_a_run_that_reached_no_booking_it_made_names_what_it_missed() -> None:
    reached = Figures(stateful={operation: {"200": 1} for operation in BOOKING_LIFECYCLE})
    assert reached.unreached() == []
    not_yet_past = {**reached.stateful, "POST /bookings/{bookingId}/no-show": {"422": 3, "404": 9}}
    assert Figures(stateful=not_yet_past).unreached() == []
    made_up = {**reached.stateful, "POST /bookings/{bookingId}/reschedule": {"404": 40, "422": 2}}
    assert Figures(stateful=made_up).unreached() == ["POST /bookings/{bookingId}/reschedule"]
    assert Figures().unreached() == REQUIRED
    # a no-show is reported, not required (links to it are rarely followed: runner.REQUIRED says why)
    no_no_show = {op: statuses for op, statuses in reached.stateful.items() if not op.endswith("/no-show")}
    assert Figures(stateful=no_no_show).unreached() == []
    no_show = "POST /bookings/{bookingId}/no-show"
    assert no_show in BOOKING_LIFECYCLE and no_show not in REQUIRED
    assert Figures(stateful=made_up).stateful_answers("POST /bookings/{bookingId}/reschedule", ("2xx",)) == 0


def test_runs_add_up_to_one_runs_figures() -> None:
    """make fuzz runs the stateful phase again until it ran the scenarios asked for: the summary is
    every run's, added up (and a 5xx or a failure in any run is the whole run's)."""
    first = Figures(
        cases=6_900,
        operations_tested=20,
        operations_selected=20,
        responses={"2xx": 3_000, "4xx": 3_900},
        failures={},
        stateful={"POST /bookings": {"201": 4}},
        stateful_linked_2xx={"POST /bookings": 1},
        stateful_scenarios=12,
        seconds=900.0,
        seed="7",
        rounds=[{"seed": "7", "cases": 6_900, "stateful scenarios": 12}],
    )
    again = Figures(
        cases=400,
        operations_tested=14,
        operations_selected=20,
        responses={"2xx": 300, "5xx": 1},
        server_errors=1,
        failures={"ST202": 1},
        stateful={"POST /bookings": {"201": 9, "409": 2}},
        stateful_linked_2xx={"POST /bookings": 3},
        stateful_scenarios=40,
        seconds=60.0,
        seed="8",
        rounds=[{"seed": "8", "cases": 400, "stateful scenarios": 40}],
    )
    both = first.plus(again)
    assert (both.cases, both.stateful_scenarios, both.seconds) == (7_300, 52, 960.0)
    assert (both.operations_tested, both.operations_selected, both.seed) == (20, 20, "7")
    assert both.responses == {"2xx": 3_300, "4xx": 3_900, "5xx": 1} and both.server_errors == 1
    assert both.failures == {"ST202": 1} and both.mismatches == 1
    assert both.stateful == {"POST /bookings": {"201": 13, "409": 2}}
    assert both.stateful_linked_2xx == {"POST /bookings": 4}
    assert [r["seed"] for r in both.rounds] == ["7", "8"]
