"""Limit counters against the claim scheme in-process: a transaction that meets another booking's
transaction on a counter (TransactionConflict, which DynamoDB answers and the one-at-a-time emulator
never does) decides again on the calendar it had, with no new read, and counts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.use_cases import BookingRequest, BookingService
from services.common import keys
from services.common.auth import Group, Principal
from tests.integration.test_claim_properties import BY, TABLE, invoke, open_provider


def test_a_conflict_on_a_limit_counter_decides_again_without_a_read(inproc: Any, monkeypatch: Any) -> None:
    pid = open_provider("Counted", "06:00", "22:00")
    body = {"name": "Limited", "durationMinutes": 30, "minNoticeMinutes": 0, "maxPerCustomerPerDay": 2}
    sid = invoke("POST", f"/providers/{pid}/services", body)["serviceId"]
    store = DynamoDBBookingStore(inproc, TABLE)
    service = BookingService(store, lambda: datetime.now(UTC))
    calls: list[str] = []
    inproc.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    real = inproc.transact_write_items
    conflicts = iter([True])
    conflicted: list[list[int]] = []

    def transact(**request: Any) -> Any:
        if next(conflicts, False):
            items = request["TransactItems"]
            counted = [
                i
                for i, item in enumerate(items)
                if item.get("Update", {}).get("Key", {}).get("PK", {}).get("S", "").startswith("LIMITS#")
            ]
            assert counted, "the booking counts in its limit"
            conflicted.append(counted)
            response: Any = {
                "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                "CancellationReasons": [
                    {"Code": "TransactionConflict" if i in counted else "None"} for i in range(len(items))
                ],
            }
            raise ClientError(response, "TransactWriteItems")
        return real(**request)

    monkeypatch.setattr(inproc, "transact_write_items", transact)
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=3), datetime.min.time(), UTC) + timedelta(
        hours=9
    )
    customer = Principal("counted-customer", frozenset({Group.CUSTOMERS}))
    answer = service.book(
        customer, BookingRequest(pid, sid, start, None, None), None, "h", lambda b: {"bookingId": b.booking_id}, BY
    )
    assert answer.status == 201 and len(conflicted) == 1
    assert calls == ["Query", "TransactWriteItems"]  # the conflicted attempt never reached botocore; one read
    monkeypatch.undo()
    day = start.date().isoformat()
    key = keys.limit_counter_key(pid, f"CUSTOMER#counted-customer#SERVICE#{sid}#DAY#{day}")
    assert inproc.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]["count"] == {"N": "1"}
