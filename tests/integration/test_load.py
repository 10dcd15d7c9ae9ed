"""`make load`'s machinery at a tiny size: locust's scenarios against a local stack of its own, the
reports, and the invariants; and the invariant checks themselves, shown failing on broken data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtests import load

pytestmark = pytest.mark.slow


REPORTS = ("locust.html", "locust.json", "statuses.json", "fixture.json", "summary.md", "summary.json")


def test_a_short_contention_run_writes_its_reports_and_the_invariants_hold(tmp_path: Path) -> None:
    """The contention scenario at a tiny size (the mixed one is the README's run, below)."""
    code = load.main(
        [
            "--users",
            "8",
            "--duration",
            "8s",
            "--scenario",
            "contention",
            "--providers",
            "2",
            "--report-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, (tmp_path / "summary.md").read_text()
    for name in REPORTS:
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["violations"] == [] and summary["requests"] > 0
    assert summary["auditedBookings"] == summary["bookingsMade"]
    # the same three slots: someone wins, and the losers are told 409
    assert summary["bookingsMade"] >= 1 and summary["conflicts"] > 0


def test_the_readmes_load_example_holds_with_no_5xx(tmp_path: Path) -> None:
    """`make load USERS=200 DURATION=30s`, as the README shows it: more users than this machine serves
    at AWS's speed, so requests wait for the local workers, but none is throttled or fails."""
    code = load.main(["--users", "200", "--duration", "30s", "--report-dir", str(tmp_path)])
    for name in REPORTS:  # the mixed scenario's reports, all written
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert code == 0 and summary["violations"] == [], (tmp_path / "summary.md").read_text()
    statuses: dict[str, int] = json.loads((tmp_path / "statuses.json").read_text())
    assert not [key for key in statuses if key.rsplit(" ", 1)[-1].startswith("5")], statuses
    # That it ran at all (alone this machine makes about 1,260 requests and 225 bookings in the 30 s).
    assert summary["requests"] > 250 and summary["auditedBookings"] == summary["bookingsMade"] > 25


class FakeApi(load.Api):
    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("http://unused", "token")
        self.answers = answers

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return 200, self.answers[path.split("?")[0]]


FIXTURE = {"providers": [{"providerId": "prv_1", "services": [{"serviceId": "svc_1", "bufferAfterMinutes": 5}]}]}


def booking(number: int, start: str, end: str, status: str = "CONFIRMED", version: int = 1) -> dict[str, Any]:
    return {
        "bookingId": f"bkg_{number}",
        "serviceId": "svc_1",
        "start": start,
        "end": end,
        "status": status,
        "version": version,
    }


def test_the_checks_catch_overlaps_buffers_included_missing_or_doubled_audit_events_and_5xx() -> None:
    verdict = load.Verdict()
    bookings = [
        booking(1, "2026-12-01T09:00:00+00:00", "2026-12-01T09:30:00+00:00"),
        booking(2, "2026-12-01T09:32:00+00:00", "2026-12-01T10:00:00+00:00"),  # inside 1's 5-minute buffer
        booking(3, "2026-12-01T09:10:00+00:00", "2026-12-01T09:40:00+00:00", status="CANCELLED", version=2),
    ]
    found = load.check_no_overlap(FakeApi({"/bookings": {"items": bookings}}), FIXTURE, verdict)
    assert found == bookings and verdict.violations == ["overlapping confirmed bookings: bkg_1 and bkg_2"]

    history = {
        "/bookings/bkg_1/history": {"items": [{"eventId": "e1"}]},
        "/bookings/bkg_2/history": {"items": [{"eventId": "e2"}, {"eventId": "e2"}]},
        "/bookings/bkg_3/history": {"items": [{"eventId": "e3"}]},
    }
    verdict = load.Verdict()
    load.check_audit(FakeApi(history), bookings, verdict, settle_seconds=0)
    assert verdict.violations == [
        "bkg_2: duplicate audit events",
        "bkg_2: 2 audit events for version 1",
        "bkg_3: 1 audit events for version 2",
    ]

    verdict = load.Verdict()
    load.check_statuses(
        {"POST /bookings 201": 5, "POST /bookings 409": 2, "GET /slots 503": 1}, [{"num_failures": 0}], verdict
    )
    assert verdict.violations == ["5xx answers: {'GET /slots 503': 1}"] and verdict.figures["conflicts"] == 2
