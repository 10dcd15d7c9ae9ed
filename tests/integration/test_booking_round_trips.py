"""Round trips of the booking service, and its retries on transient errors (both injected in-process)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from local.apigateway.api import ApiDefinition
from local.apigateway.http_messages import HttpRequest
from local.apigateway.proxy_integration import build_event
from services.availability import handler as availability
from services.booking import handler as booking
from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.ports import Stale
from services.booking.domain.use_cases import BookingService
from services.common.aws import dynamodb_client
from services.common.clock import utc_now
from tests.conftest import FakeLambdaContext
from tests.integration.conftest import invoke_handler, run_handler

API = ApiDefinition.load()


def invoke(
    module: Any, method: str, path: str, body: Any = None, sub: str = "owner", groups: str = "providers"
) -> tuple[int, Any]:
    return invoke_handler(module, method, path, body, sub, groups)


def recorded() -> list[str]:
    operations: list[str] = []
    dynamodb_client().meta.events.register("before-call.dynamodb", lambda model, **_: operations.append(model.name))
    return operations


def a_bookable_slot() -> tuple[str, str, list[str]]:
    pid = invoke(availability, "POST", "/providers", {"name": "Trips", "timeZone": "UTC"})[1]["providerId"]
    weekly = {day: [{"start": "00:00", "end": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    invoke(availability, "PUT", f"/providers/{pid}/schedule", {"weekly": weekly})
    sid = invoke(
        availability, "POST", f"/providers/{pid}/services", {"name": "S", "durationMinutes": 30, "minNoticeMinutes": 0}
    )[1]["serviceId"]
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    starts = [(start + timedelta(hours=n)).isoformat() for n in range(3)]
    return pid, sid, starts


def test_create_read_cancel_and_reschedule_take_one_read_and_one_write(inproc: Any) -> None:
    pid, sid, (first, second, third) = a_bookable_slot()
    operations = recorded()
    status, created = invoke(
        booking, "POST", "/bookings", {"providerId": pid, "serviceId": sid, "start": first}, "cust", "customers"
    )
    assert status == 201 and operations == ["Query", "TransactWriteItems"]
    operations.clear()
    assert invoke(booking, "GET", f"/bookings/{created['bookingId']}", sub="cust", groups="customers")[0] == 200
    assert operations == ["GetItem"]
    operations.clear()
    status, _ = invoke(
        booking, "POST", f"/bookings/{created['bookingId']}/reschedule", {"start": second}, "cust", "customers"
    )
    assert status == 200 and operations == ["Query", "TransactWriteItems"]
    operations.clear()
    status, _ = invoke(booking, "POST", f"/bookings/{created['bookingId']}/cancel", {}, "cust", "customers")
    assert status == 200 and operations == ["GetItem", "TransactWriteItems"]
    # an idempotent replay costs no extra round trip
    body = {"providerId": pid, "serviceId": sid, "start": third}
    request = HttpRequest(
        "POST",
        "/bookings",
        [("Content-Type", "application/json"), ("Idempotency-Key", "k-1")],
        json.dumps(body).encode(),
    )
    route, parameters = API.find("POST", "/bookings") or pytest.fail("no route")
    event = build_event(
        request,
        route,
        parameters,
        request_id="r",
        stage="i",
        claims={"sub": "cust", "cognito:groups": "customers"},
        trace="Root=1-a-b",
    )
    first_answer = run_handler(booking, event, FakeLambdaContext())
    operations.clear()
    replay = run_handler(booking, event, FakeLambdaContext())
    assert replay["body"] == first_answer["body"] and replay["statusCode"] == 201
    assert operations == ["Query", "GetItem"]  # the slot is taken (by the first), so the record is read once


def test_a_warm_create_is_one_transaction_and_a_stale_one_costs_one_more(
    inproc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The booking container remembers the calendars it read and changed (decision 0007): a create
    on a remembered calendar is one TransactWriteItems, no read. What another container changed
    meanwhile fails that transaction, which returns the changed blocks: one more transaction. Hours
    changed meanwhile cost a read too. A refusal is never decided on what is remembered."""
    pid, _, _ = a_bookable_slot()
    # A 10-minute service: three bookings fit in one 30-minute busy block without overlapping.
    body = {"name": "Short", "durationMinutes": 10, "slotStepMinutes": 10, "minNoticeMinutes": 0}
    sid = invoke(availability, "POST", f"/providers/{pid}/services", body)[1]["serviceId"]
    day = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)

    def at(minutes: int) -> str:
        return (day + timedelta(minutes=minutes)).isoformat()

    def create(start: str, who: str = "cust") -> tuple[int, list[str]]:
        operations.clear()
        status, _ = invoke(
            booking, "POST", "/bookings", {"providerId": pid, "serviceId": sid, "start": start}, who, "customers"
        )
        return status, list(operations)

    def elsewhere(start: str) -> None:
        """A booking made by another container: one this container's memory knows nothing of."""
        other = BookingService(DynamoDBBookingStore(dynamodb_client(), os.environ["TABLE_NAME"]), utc_now)
        with monkeypatch.context() as patched:
            patched.setattr(booking, "bookings", lambda: other)
            assert (
                invoke(
                    booking,
                    "POST",
                    "/bookings",
                    {"providerId": pid, "serviceId": sid, "start": start},
                    "other",
                    "customers",
                )[0]
                == 201
            )

    operations = recorded()
    assert create(at(0)) == (201, ["Query", "TransactWriteItems"])  # cold: read, then commit
    assert create(at(10)) == (201, ["TransactWriteItems"])  # warm: same block, known to be ours
    assert create(at(60)) == (201, ["TransactWriteItems"])  # warm: a block never touched
    # warm on later days too, as far as the read reached (the week of alternatives it read for the first)
    assert create(at(6 * 1440)) == (201, ["TransactWriteItems"])
    elsewhere(at(20))  # the 09:00 block moves on without this container
    assert create(at(70)) == (201, ["TransactWriteItems"])  # 10:10, in the 10:00 block: nothing stale there
    elsewhere(at(80))  # 10:20, in the 10:00 block
    assert create(at(90)) == (201, ["TransactWriteItems"])  # 10:30, the next block
    # A warm create in a block changed elsewhere: the failed transaction returns that block as it
    # is now, and the second goes through
    elsewhere(at(100))  # 10:40
    assert create(at(110)) == (201, ["TransactWriteItems", "TransactWriteItems"])  # 10:50
    # A refusal is decided on a read: the time another container took, unknown here, is refused after one
    elsewhere(at(120))
    status, calls = create(at(120))
    assert (status, calls) == (409, ["TransactWriteItems", "Query"])
    # and a time this container knows is taken is refused on a read, not on its memory
    assert create(at(0)) == (409, ["Query"])
    # Hours changed since: the transaction fails on them, and the booking reads before it commits
    weekly = {day: [{"start": "00:00", "end": "24:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    assert invoke(availability, "PUT", f"/providers/{pid}/schedule", {"weekly": weekly})[0] == 200
    assert create(at(150)) == (201, ["TransactWriteItems", "Query", "TransactWriteItems"])
    assert create(at(160)) == (201, ["TransactWriteItems"])


def _error_response(code: str, status: int = 400) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    response = AWSResponse("https://dynamodb.local", status, headers, None)
    response._content = body  # type: ignore[attr-defined]
    return response


def test_transient_errors_are_retried_with_bounded_backoff(inproc: Any) -> None:
    pid, sid, (first, _, _) = a_bookable_slot()
    reads: list[str] = []
    throttles_left, conflicts_left = [2], [1]

    def throttle_reads(request: Any, **_: Any) -> AWSResponse | None:
        # On the wire: the SDK sees a throttle or a 500 and retries (a read, so moto also serving it is harmless).
        if request.headers.get("X-Amz-Target", b"").decode().endswith(".Query"):
            reads.append("Query")
            if throttles_left[0]:
                throttles_left[0] -= 1
                code, status = ("ThrottlingException", 400) if throttles_left[0] else ("InternalServerError", 500)
                return _error_response(code, status)
        return None

    def conflict_once(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        # Before sending: DynamoDB refusing the transaction because another one held an item.
        if model.name == "TransactWriteItems" and conflicts_left[0]:
            conflicts_left[0] -= 1
            error = {"Error": {"Code": "TransactionConflictException", "Message": "injected"}, "ResponseMetadata": {}}
            return _error_response("TransactionConflictException"), error
        return None

    client = dynamodb_client()
    handlers: Any = client.meta.events  # the stubs type handlers as returning None; these answer
    handlers.register_first("before-send.dynamodb", throttle_reads)
    handlers.register_first("before-call.dynamodb.TransactWriteItems", conflict_once)
    body = {"providerId": pid, "serviceId": sid, "start": first}
    status, created = invoke(booking, "POST", "/bookings", body, "cust", "customers")
    assert status == 201, created
    assert throttles_left == [0] and conflicts_left == [0]
    # the SDK retried the throttled and the failed read (3 sends), and the conflict made the service
    # read again (the 4th) before its transaction went through
    assert reads.count("Query") == 4
    assert invoke(booking, "GET", f"/bookings/{created['bookingId']}", sub="cust", groups="customers")[1] == created


class _LittleTimeLeft(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return booking.RETRY_RESERVE_MS - 1


def test_a_booking_that_keeps_losing_races_answers_503_before_its_time_runs_out(
    inproc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a calendar that another booking changes between every read and write
    pid, sid, (first, _, _) = a_bookable_slot()
    store = booking.bookings().store
    monkeypatch.setattr(type(store), "claim", lambda *_args, **_kwargs: Stale())
    request = HttpRequest(
        "POST",
        "/bookings",
        [("Content-Type", "application/json")],
        json.dumps({"providerId": pid, "serviceId": sid, "start": first}).encode(),
    )
    route, parameters = API.find("POST", "/bookings") or pytest.fail("no route")
    claims = {"sub": "cust", "cognito:groups": "customers"}
    event = build_event(request, route, parameters, request_id="r", stage="i", claims=claims, trace="Root=1-a-b")

    # When the request has lost a race with too little time left for another round
    answer = run_handler(booking, event, _LittleTimeLeft())

    # Then it is told to retry, plainly, instead of being cut off by the timeout (a bare 502)
    assert answer["statusCode"] == 503
    assert answer["multiValueHeaders"]["Retry-After"] == ["1"]
    assert json.loads(answer["body"])["code"] == "CONTENDED"
    assert invoke(booking, "GET", "/bookings", sub="cust", groups="customers")[1]["items"] == []


def test_a_table_that_throttles_through_every_retry_answers_503_with_retry_after(inproc: Any) -> None:
    # Given a table that refuses every read for capacity (the SDK retries 3 times, then gives up)
    pid, sid, (first, second, _) = a_bookable_slot()
    handlers: Any = dynamodb_client().meta.events

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        if request.headers.get("X-Amz-Target", b"").decode().endswith(".Query"):
            return _error_response("ProvisionedThroughputExceededException")
        return None

    handlers.register_first("before-send.dynamodb", throttle)
    try:
        # When a customer searches for slots
        window = f"from={first.replace('+', '%2B')}&to={second.replace('+', '%2B')}"
        route, parameters = API.find("GET", f"/providers/{pid}/slots") or pytest.fail("no route")
        request = HttpRequest("GET", f"/providers/{pid}/slots?serviceId={sid}&{window}", [], b"")
        claims = {"sub": "c", "cognito:groups": "customers"}
        event = build_event(request, route, parameters, request_id="r", stage="i", claims=claims, trace="Root=1-a-b")
        answer = run_handler(availability, event, FakeLambdaContext())
    finally:
        handlers.unregister("before-send.dynamodb", throttle)

    # Then it is told the service is busy and when to retry, not that it broke
    assert answer["statusCode"] == 503
    assert answer["multiValueHeaders"]["Retry-After"] == ["1"]
    assert json.loads(answer["body"])["code"] == "SERVICE_UNAVAILABLE"
