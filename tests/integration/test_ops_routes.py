"""The console's routes on the local stack: its page and plotly.js served offline, the dashboard's
data, logs filtered by booking id and level, runbooks, and bad input refused by name. None of it is
part of the API: it is neither in the access log nor in the API's metrics."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from local.cloudwatch.metric_store import MetricId
from local.stack import LocalStack
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots


def fetch(stack: LocalStack, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"{stack.url}{path}", timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_the_page_and_its_assets_come_from_the_stack_itself(stack: LocalStack) -> None:
    status, kind, page = fetch(stack, "/_ops")
    assert status == 200 and kind.startswith("text/html")
    assert b'src="/_ops/assets/plotly.min.js"' in page and b"https://" not in page  # nothing from the internet
    status, kind, plotly = fetch(stack, "/_ops/assets/plotly.min.js")
    assert status == 200 and "javascript" in kind and len(plotly) > 1_000_000
    for path in ("/_ops/assets/ops.js", "/_ops/assets/ops.css"):
        assert fetch(stack, path)[0] == 200
    assert fetch(stack, "/_ops/assets/../stack.py")[0] == 404
    status, kind, runbook = fetch(stack, "/_ops/runbooks/table-throttles.md")
    assert status == 200 and kind.startswith("text/html") and b"<h1>" in runbook
    assert fetch(stack, "/_ops/runbooks/nope.md")[0] == 404


def test_dashboard_logs_and_traces_answer_from_the_traffic(stack: LocalStack) -> None:
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "ops-owner", "Ops Clinic", weekly, [{"name": "V", "durationMinutes": 30}])
    who = token(stack, "ops-customer", ["customers"])
    status, headers, booking = book(stack, who, pid, sid, slots(stack, pid, sid, future_day(7))[0]["start"])
    assert status == 201
    assert stack.event_source_mapping is not None and stack.event_source_mapping.wait_caught_up()

    status, _, dashboard = call(stack, "GET", "/_ops/dashboard?minutes=15")
    assert status == 200 and not [w for w in dashboard["widgets"] if "error" in w]
    assert {w["type"] for w in dashboard["widgets"]} == {"text", "alarm", "metric", "log"}

    status, _, logs = call(stack, "GET", f"/_ops/logs?bookingId={booking['bookingId']}")
    groups = {line["group"].rsplit("-", 1)[1] for line in logs["lines"]}
    # the request, then the audit consumer (and, as the booking's event reaches it, the notifications function)
    assert status == 200 and {"booking", "audit"} <= groups <= {"booking", "audit", "notifications"}, groups
    assert all(line["bookingId"] == booking["bookingId"] for line in logs["lines"])
    reports = call(stack, "GET", "/_ops/logs?correlationId=" + logs["lines"][-1]["correlationId"])[2]["lines"]
    assert reports and all(line["correlationId"] == logs["lines"][-1]["correlationId"] for line in reports)
    infos = call(stack, "GET", "/_ops/logs?level=info")[2]["lines"]
    assert infos and {line["level"] for line in infos} == {"INFO"}

    trace = dict(part.split("=", 1) for part in headers["X-Amzn-Trace-Id"].split(";"))["Root"]
    status, _, waterfall = call(stack, "GET", f"/_ops/traces?traceId={trace}")
    assert status == 200 and waterfall["spans"][0]["name"] == "POST /bookings" and waterfall["linked"]
    assert any(trace == listed["traceId"] for listed in call(stack, "GET", "/_ops/traces")[2]["traces"])
    assert call(stack, "GET", "/_ops/traces?traceId=1-00000000-000000000000000000000000")[0] == 404


@pytest.mark.parametrize("minutes", ["7", "lots"])
def test_a_range_the_page_does_not_offer_is_refused_by_name(stack: LocalStack, minutes: str) -> None:
    status, _, body = call(stack, "GET", f"/_ops/dashboard?minutes={minutes}")
    assert status == 400 and body["field"] == "minutes"


def test_the_console_is_not_part_of_the_api(stack: LocalStack) -> None:
    assert stack.metrics is not None
    count = MetricId.of("AWS/ApiGateway", "Count", {"ApiName": "appointments-local", "Stage": "local"})
    time.sleep(1.0)  # the datapoints below are per second: start on a second no API request shares
    since = stack.clock.now()  # datapoints are stamped on the stack's clock, which other tests may move
    for path in ("/_ops", "/_ops/dashboard?minutes=5", "/_ops/alarms", "/_local/status"):
        assert fetch(stack, path)[0] == 200
    values = [value for _, value in stack.metrics.datapoints(count, "Sum", 1, since, stack.clock.now() + 1) if value]
    assert values == []
    access = (stack.logs_dir / "api-access.log").read_text()
    assert '"/_ops' not in access and '"/_local/status"' not in access
