"""The operations console in a real browser: traffic through a local stack of its own, then `/_ops` in
headless chromium, driven by Selenium. The page its scripts built shows the dashboard's metric widgets
holding charted data, the alarm widget listing the alarms with their evaluated states, and the log
widgets' answers; a click draws a booking's trace as a waterfall down to the audit consumer's S3
write; the log filter narrows to one booking; faults set and cleared on the page reach the emulator.
A full-page screenshot is kept as an artifact (`.artifacts/ops-console.png`, or under
`$ARTIFACTS_DIR`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from local.cloudwatch.dashboard import dashboard_body
from local.stack import LocalStack, StackConfig
from tests.browser import chromium
from tests.conftest import ROOT
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / ".artifacts"))
CHARTED_WITH_TRAFFIC = [
    "API requests",
    "API latency (ms)",
    "booking API: requests, 4xx and 5xx rate (per-route metrics)",
    "booking: invocations, errors, error rate %",
    "Bookings and holds per minute",
    "Conflict rate and refusals",
    "Slot searches",
    "DynamoDB latency (ms, average)",
    "Audit events archived and failed",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("ops-console")
    local = LocalStack(StackConfig(port=0, state_dir=state, echo=None, seed=False, alarm_interval=1.0))
    local.start()
    yield local
    local.stop()


def traffic(stack: LocalStack) -> tuple[str, str]:
    """Searches, bookings, a conflict and a cancellation; answers a booking's id and its trace id."""
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    services = [{"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30}]
    pid, (sid,) = make_provider(stack, "console-owner", "Console Clinic", weekly, services)
    offered = slots(stack, pid, sid, future_day(2))
    customer = token(stack, "console-customer", ["customers"])
    status, headers, booking = book(stack, customer, pid, sid, offered[0]["start"])
    assert status == 201, booking
    assert book(stack, customer, pid, sid, offered[0]["start"])[0] == 409
    status, _, other = book(stack, customer, pid, sid, offered[1]["start"])
    assert status == 201, other
    assert call(stack, "POST", f"/bookings/{other['bookingId']}/cancel", token=customer, body={})[0] == 200
    trace = dict(part.split("=", 1) for part in headers["X-Amzn-Trace-Id"].split(";"))["Root"]
    return str(booking["bookingId"]), trace


def wait(driver: WebDriver, check: Callable[[WebDriver], object], what: str, seconds: float = 20) -> None:
    # a refresh may replace what `check` was reading: read again
    waiting = WebDriverWait(driver, seconds, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])
    waiting.until(check, message=f"waited {seconds} s for {what}")


def refreshes(driver: WebDriver) -> int:
    return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or 0)


def data(element: WebElement, name: str) -> str:
    value = element.get_attribute(f"data-{name}")
    assert value is not None, f"data-{name} missing"
    return value


def test_the_ops_console_draws_the_dashboard_alarms_traces_logs_and_sets_faults(stack: LocalStack) -> None:
    booking_id, trace_id = traffic(stack)
    assert stack.event_source_mapping is not None and stack.event_source_mapping.wait_caught_up()
    assert stack.alarms is not None
    stack.alarms.evaluate()  # as the evaluator's next tick would

    with chromium.browser() as driver:
        driver.get(f"{stack.url}/_ops?minutes=15&refresh=2")
        # The page refreshes itself; then it is held still, so that what is read below stays put
        wait(driver, lambda d: refreshes(d) >= 2, "the page to refresh itself")
        driver.find_element(By.ID, "auto").click()
        wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-refreshing") is None, "quiet")
        assert driver.find_element(By.ID, "refresh-period").text == "2"
        assert data(driver.find_element(By.TAG_NAME, "body"), "widget-errors") == "0"
        assert "updated" in driver.find_element(By.ID, "updated").text

        # Every widget of the deployed body is on the page, in its order
        body = dashboard_body({"Stage": "local"})
        widgets = driver.find_elements(By.CSS_SELECTOR, "#grid > article.widget")
        assert [data(w, "type") for w in widgets] == [w["type"] for w in body["widgets"]]

        # Metric widgets are plotly charts; those the traffic touched hold datapoints and draw lines
        metric = {data(w, "title"): w for w in widgets if data(w, "type") == "metric"}
        assert all(w.find_elements(By.CSS_SELECTOR, "svg.main-svg") for w in metric.values()), "a chart is missing"
        for title in CHARTED_WITH_TRAFFIC:
            assert int(data(metric[title], "points")) > 0, title
            assert metric[title].find_elements(By.CSS_SELECTOR, "g.trace.scatter path.js-line"), f"{title}: no line"

        # The alarm widget lists the body's alarms, each in the state the local evaluation gave it
        (alarm_widget,) = (w for w in widgets if data(w, "type") == "alarm")
        listed = {data(li, "alarm"): data(li, "state") for li in alarm_widget.find_elements(By.TAG_NAME, "li")}
        (wanted,) = (w["properties"]["alarms"] for w in body["widgets"] if w["type"] == "alarm")
        assert set(listed) == {arn.rsplit(":alarm:", 1)[1] for arn in wanted}
        assert set(listed.values()) <= {"OK", "ALARM", "INSUFFICIENT_DATA"} and "OK" in listed.values()
        assert len(driver.find_elements(By.CSS_SELECTOR, "#alarm-table tbody tr")) == len(stack.alarms.alarms)

        # Log widgets answered their Logs Insights queries; the text widget links the local runbooks
        logs = {data(w, "title"): w for w in widgets if data(w, "type") == "log"}
        assert int(data(logs["Slowest invocations"], "rows")) > 0
        (text,) = (w for w in widgets if data(w, "type") == "text")
        assert text.find_elements(By.CSS_SELECTOR, 'a[href="/_ops/runbooks/api-5xx.md"]')

        # A click on the booking's trace draws its waterfall: the request, its DynamoDB calls and,
        # through the span link, the audit consumer's work down to the archive's S3 write
        driver.find_element(By.CSS_SELECTOR, f'#trace-table tr[data-trace="{trace_id}"]').click()
        wait(
            driver,
            lambda d: d.find_element(By.ID, "waterfall").get_attribute("data-trace") == trace_id,
            "the waterfall",
        )
        spans = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#waterfall .span-row")]
        assert any(span.startswith("POST /bookings") for span in spans)
        assert any("TransactWriteItems" in span for span in spans)
        assert any("PutObject" in span for span in spans), spans
        assert any("linked trace" in head.text for head in driver.find_elements(By.CSS_SELECTOR, ".trace-head"))

        # The logs, filtered by booking id from the form
        driver.find_element(By.CSS_SELECTOR, '#log-filter input[name="bookingId"]').send_keys(booking_id)
        driver.find_element(By.CSS_SELECTOR, '#log-filter button[type="submit"]').click()
        wait(driver, lambda d: _filtered(d, booking_id), "the logs of the booking")

        # Faults from the page reach the emulator, and clearing them from the page removes them
        throttle = driver.find_element(By.CSS_SELECTOR, '#fault-form input[name="dynamodbThrottle"]')
        throttle.clear()
        throttle.send_keys("0.25")
        driver.find_element(By.CSS_SELECTOR, '#fault-form button[type="submit"]').click()
        wait(driver, lambda d: "dynamodbThrottle=0.25" in d.find_element(By.ID, "fault-status").text, "the fault")
        assert call(stack, "GET", "/_local/faults")[2]["plan"]["dynamodbThrottle"] == 0.25
        driver.find_element(By.ID, "fault-clear").click()
        wait(driver, lambda d: "Active: no faults" in d.find_element(By.ID, "fault-status").text, "the clearing")
        assert call(stack, "GET", "/_local/faults")[2]["plan"]["dynamodbThrottle"] == 0

        # The whole page, as the artifact
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(1600, min(height + 100, 12_000))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "ops-console.png"
        assert driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def _filtered(driver: WebDriver, booking_id: str) -> bool:
    rows = driver.find_elements(By.CSS_SELECTOR, "#log-table tbody tr")
    return bool(rows) and all(booking_id in row.text for row in rows)
