"""DynamoDB capacity units per API request, as the emulator meters them (local/emulator/capacity.py)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from local.emulator.capacity import item_size
from local.stack import LocalStack, aws_client
from services.common import keys
from tests.integration.conftest import call, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots


def units_of(stack: LocalStack, trace_header: str) -> list[dict[str, Any]]:
    """The emulator's ledger entries of one API request, found by its trace id: the booking function's
    own (the functions that hear of its change continue the trace, and are priced apart)."""
    root = next(part[5:] for part in trace_header.split(";") if part.startswith("Root="))
    ledger = call(stack, "GET", "/_local/capacity")[2]["requests"]
    return [entry for entry in ledger if entry["trace_id"] == root and entry["caller"] == "appointments-local-booking"]


def test_a_booking_costs_one_read_and_a_doubled_write_per_transaction_item(stack: LocalStack) -> None:
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(stack, "meter-owner", "Meter", weekly, [{"name": "Cut", "durationMinutes": 30}])
    who = token(stack, "meter-customer", ["customers"])
    start = slots(stack, pid, sid, future_day(5))[0]["start"]
    status, headers, booking = book(stack, who, pid, sid, start, key="meter-key-1", notes="é" * 1000)
    assert status == 201
    assert stack.emulator is not None
    client = aws_client("dynamodb", stack.emulator.endpoint)

    def kb(key: dict[str, Any]) -> int:
        stored = client.get_item(TableName="appointments-local", Key=key)["Item"]
        return math.ceil(item_size(stored) / 1024)

    booking_kb = kb(keys.booking_key(booking["bookingId"]))
    assert booking_kb > 1  # 1,000 two-byte characters of notes push it past 1 KB
    begins = datetime.fromisoformat(start)
    blocks = keys.busy_blocks(begins, begins + timedelta(minutes=30))  # the booking's span, no buffers
    others_kb = [
        kb(keys.idempotency_key("meter-customer", "meter-key-1")),  # keeps the answer, notes included
        *(kb(keys.busy_block_key(pid, block)) for block in blocks),
        kb(keys.provider_key(pid)),  # checked, not written: billed as a write all the same
        kb(keys.service_key(pid, sid)),
    ]
    query, transaction = units_of(stack, headers["X-Amzn-Trace-Id"])
    # The calendar: one strongly consistent Query of small items, 1 unit of 4 KB.
    assert (query["operation"], query["read_units"]) == ("Query", 1)
    # Every item, each billed twice in 1 KB units.
    assert transaction["operation"] == "TransactWriteItems"
    assert transaction["write_units"] == 2 * (booking_kb + sum(others_kb))
    # Both indexes (the provider's and the customer's bookings) project the whole booking.
    assert transaction["index_write_units"] == 2 * booking_kb

    status, headers, _ = call(stack, "GET", f"/bookings/{booking['bookingId']}", token=who)
    assert status == 200
    [read] = units_of(stack, headers["X-Amzn-Trace-Id"])
    assert (read["operation"], read["read_units"]) == ("GetItem", 1)  # strongly consistent, under 4 KB

    status, headers, _ = call(stack, "POST", f"/bookings/{booking['bookingId']}/cancel", token=who, body={})
    assert status == 200
    _, cancel = units_of(stack, headers["X-Amzn-Trace-Id"])
    # The status is projected into both indexes: each rewrites its entry (moto updates items in place,
    # so the meter must keep a copy of the item as it was).
    assert cancel["index_write_units"] == 2 * kb(keys.booking_key(booking["bookingId"]))


def test_a_client_that_asks_gets_the_computed_units_not_motos_constant(stack: LocalStack) -> None:
    assert stack.emulator is not None
    client = aws_client("dynamodb", stack.emulator.endpoint)
    item = {"PK": {"S": "METER#big"}, "SK": {"S": "ITEM"}, "blob": {"S": "y" * 3000}}
    answer = client.put_item(TableName="appointments-local", Item=item, ReturnConsumedCapacity="TOTAL")
    assert answer["ConsumedCapacity"]["CapacityUnits"] == 3  # 3,000-odd bytes: three 1 KB units
    answer = client.get_item(
        TableName="appointments-local", Key={"PK": item["PK"], "SK": item["SK"]}, ReturnConsumedCapacity="TOTAL"
    )
    assert answer["ConsumedCapacity"]["CapacityUnits"] == 0.5
    answer = client.delete_item(
        TableName="appointments-local", Key={"PK": item["PK"], "SK": item["SK"]}, ReturnConsumedCapacity="TOTAL"
    )
    assert answer["ConsumedCapacity"]["CapacityUnits"] == 3  # a delete is billed on the item it removes
