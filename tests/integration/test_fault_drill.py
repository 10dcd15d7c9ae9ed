"""A fault drill on a stack of its own: DynamoDB throttling injected into the emulator makes the
table-throttles alarm of the data stack go to ALARM within its evaluation window; clearing the fault
brings it back to OK. Alarm time runs 60 times faster (a one-minute period lasts a second), so the
five-minute window passes in five seconds."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack, StackConfig
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, future_day, make_provider

ALARM = "appointments-local-table-throttles"
CLIENTS = 4


@pytest.fixture
def drill_stack(tmp_path: Path) -> Iterator[LocalStack]:
    config = StackConfig(port=0, state_dir=tmp_path, echo=None, seed=False, alarm_time_scale=60, alarm_interval=0.5)
    stack = LocalStack(config)
    stack.start()
    yield stack
    stack.stop()


def alarm_state(stack: LocalStack) -> str:
    status, _, body = call(stack, "GET", "/_local/alarms")
    assert status == 200
    return str({alarm["name"]: alarm["state"] for alarm in body["alarms"]}[ALARM])


def traffic_until(stack: LocalStack, pid: str, sid: str, wanted: str, seconds: float) -> bool:
    """Slot searches (a DynamoDB Query each) from a few clients until the alarm is in `wanted`, at most
    `seconds`. Under heavy throttling a search can spend a second in the SDK's backoff, so one client
    alone would leave some one-second periods without a request; several keep every period covered,
    as real traffic does. Some searches fail after the retries: that is what the alarm is about."""
    day = future_day(2).isoformat()
    search = f"/providers/{pid}/slots?serviceId={sid}&from={day}T00:00:00Z&to={day}T23:59:59Z"
    reader = token(stack, "drill-reader", ["customers"])
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            call(stack, "GET", search, token=reader)

    clients = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if alarm_state(stack) == wanted:
                return True
            time.sleep(0.2)
        return False
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=30)


def test_injected_throttling_fires_the_throttle_alarm_and_clearing_it_recovers(drill_stack: LocalStack) -> None:
    stack = drill_stack
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "drill-owner", "Drill Clinic", weekly, [{"name": "V", "durationMinutes": 30}])
    assert traffic_until(stack, pid, sid, "OK", 10), "healthy traffic: the alarm settles at OK"

    # When half of DynamoDB's requests are throttled (the SDK's retries hide most from users)
    status, _, faults = call(stack, "PUT", "/_local/faults", body={"dynamodbThrottle": 0.5})
    assert status == 200 and faults["plan"]["dynamodbThrottle"] == 0.5
    # Then the alarm fires within its 5-of-5 window (5 s here), plus a little slack
    assert traffic_until(stack, pid, sid, "ALARM", 30), "the throttle alarm did not fire"
    injected: dict[str, Any] = call(stack, "GET", "/_local/faults")[2]["injected"]
    assert any(key.startswith("Throttle appointments-local ") for key in injected)

    # And when the fault is cleared, it returns to OK
    assert call(stack, "PUT", "/_local/faults", body={})[0] == 200
    assert traffic_until(stack, pid, sid, "OK", 30), "the throttle alarm did not recover"
    published = [json.loads(line) for line in (stack.logs_dir / "alarms.log").read_text().splitlines()]
    changes = [(m["OldStateValue"], m["NewStateValue"]) for m in published if m["AlarmName"] == ALARM]
    assert ("OK", "ALARM") in changes and changes[-1] == ("ALARM", "OK")
    assert call(stack, "PUT", "/_local/faults", body={"dynamodbThrottle": 2})[0] == 400  # a share is 0..1
