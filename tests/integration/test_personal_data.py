"""A customer's own words (notes, cancellation reasons) never reach the audit trail in clear, and an
admin's erasure removes them everywhere they can be removed, while the hash chains still verify."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

from local.stack import LocalStack, aws_client
from services.audit.verify import verify_trail
from tests.integration.conftest import call, eventually, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

NOTES = "Allergic to latex; call me on +1 555 0199 before"
REASON = "My divorce hearing was moved to that morning"


def everything_stored(stack: LocalStack) -> str:
    """Every item of both tables and every version of every archive object, as one text to search."""
    assert stack.emulator is not None and stack.data is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    s3 = aws_client("s3", stack.emulator.endpoint)
    texts = []
    for table in (stack.data.table_name, stack.data.audit_table_name):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            texts += [json.dumps(item, default=repr) for item in page["Items"]]
    bucket = stack.data.audit_bucket_name
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            texts.append(gzip.decompress(body).decode())
    return "\n".join(texts)


def sealing_key(stack: LocalStack, customer: str) -> dict[str, Any]:
    assert stack.emulator is not None and stack.data is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    key = {"PK": {"S": f"CUSTOMER#{customer}"}, "SK": {"S": "PERSONAL_DATA_KEY"}}
    return dict(dynamodb.get_item(TableName=stack.data.audit_table_name, Key=key, ConsistentRead=True)["Item"])


def history_changes(stack: LocalStack, booking_id: str, who: str, field: str) -> list[Any]:
    status, _, page = call(stack, "GET", f"/bookings/{booking_id}/history", token=who)
    assert status == 200, page
    return [item["changes"][field]["after"] for item in page["items"] if field in item["changes"]]


def test_erasure_removes_a_customers_words_everywhere_and_the_trail_still_verifies(stack: LocalStack) -> None:
    assert stack.emulator is not None and stack.data is not None and stack.event_source_mapping is not None
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    pid, (sid,) = make_provider(
        stack, "erasure-owner", "Erasure Clinic", weekly, [{"name": "Visit", "durationMinutes": 30}]
    )
    customer = "erasure-customer"
    who = token(stack, customer, ["customers"])
    free = slots(stack, pid, sid, future_day(weeks=3))
    # Given a booking with notes, made with an Idempotency-Key, and another one cancelled with a reason
    status, _, kept = book(stack, who, pid, sid, free[0]["start"], key="erase-me-1", notes=NOTES)
    assert status == 201 and kept["notes"] == NOTES, kept
    status, _, other = book(stack, who, pid, sid, free[2]["start"])
    assert status == 201, other
    cancel = f"/bookings/{other['bookingId']}/cancel"
    assert call(stack, "POST", cancel, token=who, body={"reason": REASON})[0] == 200
    assert stack.event_source_mapping.wait_caught_up()

    # Then the trail holds neither text, only a seal made with the customer's own key
    stored = everything_stored(stack)
    assert NOTES in stored and REASON in stored  # the booking items (and a kept answer) still have them
    key = bytes(sealing_key(stack, customer)["key"]["B"])
    seal = "hmac-sha256:" + hmac.new(key, NOTES.encode(), hashlib.sha256).hexdigest()
    assert history_changes(stack, kept["bookingId"], who, "notes") == [seal]
    reason_seal = "hmac-sha256:" + hmac.new(key, REASON.encode(), hashlib.sha256).hexdigest()
    assert history_changes(stack, other["bookingId"], who, "cancelReason") == [reason_seal]
    assert_trail_holds_no_clear_text(stack)

    # When anyone but an admin asks for the erasure, nothing happens
    for caller, groups in [(customer, ["customers"]), ("erasure-owner", ["providers"]), ("oncall", ["ops"])]:
        status, _, problem = call(
            stack, "DELETE", f"/customers/{customer}/personal-data", token=token(stack, caller, groups)
        )
        assert (status, problem["code"]) == (403, "FORBIDDEN"), problem
    assert NOTES in everything_stored(stack)

    # When an admin erases the customer's personal data (again while the index lags: both are found)
    admin = token(stack, "erasure-admin", ["admins"])
    scrubbed: list[int] = []

    def erase() -> Any:
        status, _, body = call(stack, "DELETE", f"/customers/{customer}/personal-data", token=admin)
        assert status == 202 and body["customerId"] == customer, body
        scrubbed.append(body["bookings"])
        return body if sum(scrubbed) == 2 else None

    erased = eventually(erase)
    assert erased and sum(scrubbed) == 2, scrubbed

    # Then the bookings are still there, without the words, and a replay of the first request too
    status, _, read = call(stack, "GET", f"/bookings/{kept['bookingId']}", token=who)
    assert status == 200 and "notes" not in read and read["status"] == "CONFIRMED", read
    status, _, replay = book(stack, who, pid, sid, free[0]["start"], key="erase-me-1", notes=NOTES)
    assert (status, replay["bookingId"]) == (201, kept["bookingId"]) and "notes" not in replay, replay
    # and once the audit service has the erasure, the key is gone and the erasure is in the trail
    assert stack.event_source_mapping.wait_caught_up()
    item = sealing_key(stack, customer)
    assert "key" not in item and item["erasedAt"]["S"] == erased["erasedAt"]
    ops = token(stack, "oncall", ["ops"])

    def erasures() -> list[tuple[str, str]]:
        status, _, events = call(stack, "GET", f"/audit/events?entityType=Customer&entityId={customer}", token=ops)
        assert status == 200, events
        return [(event["action"], event["actor"]) for event in events["items"]]

    recorded = eventually(lambda: len(erasures()) == len(scrubbed) and erasures())  # the index may lag a moment
    assert recorded == [("PERSONAL_DATA_ERASED", "erasure-admin")] * len(scrubbed)
    # and neither text is stored anywhere, while the seals of the history stay what they were
    stored = everything_stored(stack)
    assert NOTES not in stored and REASON not in stored
    assert history_changes(stack, kept["bookingId"], who, "notes") == [seal]
    # and every chain still verifies
    dynamodb, s3 = aws_client("dynamodb", stack.emulator.endpoint), aws_client("s3", stack.emulator.endpoint)
    result = verify_trail(dynamodb, s3, stack.data.audit_table_name, stack.data.audit_bucket_name)
    assert result.intact, result.summary()


def assert_trail_holds_no_clear_text(stack: LocalStack) -> None:
    assert stack.emulator is not None and stack.data is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    trail = json.dumps(dynamodb.scan(TableName=stack.data.audit_table_name, ConsistentRead=True)["Items"], default=repr)
    assert NOTES not in trail and REASON not in trail
    s3 = aws_client("s3", stack.emulator.endpoint)
    bucket = stack.data.audit_bucket_name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            text = gzip.decompress(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()).decode()
            assert NOTES not in text and REASON not in text, entry["Key"]


def test_an_erasure_names_the_customer_as_their_id_is_spelt_not_as_the_url_encodes_it(stack: LocalStack) -> None:
    """API Gateway (REST) hands a Lambda proxy its path parameters as the client sent them, percent-
    encoded; an id with an accent or an @ must still erase that customer's words, and its 128
    characters are counted as the customer's, not as the URL's (make fuzz found both)."""
    weekly = {day: [{"start": "09:00", "end": "17:00"}] for day in WEEKDAYS}
    visit = {"name": "Visit", "durationMinutes": 30}
    pid, (sid,) = make_provider(stack, "spelling-owner", "Spelling Clinic", weekly, [visit])
    owner = token(stack, "spelling-owner", ["providers"])
    customer = "zoë.ünal+1@example.com"
    status, _, booked = book(
        stack,
        owner,
        pid,
        sid,
        slots(stack, pid, sid, future_day(weeks=3))[0]["start"],
        customerId=customer,
        notes=NOTES,
    )
    assert status == 201 and booked["customerId"] == customer, booked
    admin = token(stack, "spelling-admin", ["admins"])

    def erase() -> Any:
        status, _, body = call(stack, "DELETE", f"/customers/{quote(customer, safe='')}/personal-data", token=admin)
        assert status == 202 and body["customerId"] == customer, body
        return body if body["bookings"] == 1 else None  # the index may lag a moment

    assert eventually(erase)
    status, _, read = call(stack, "GET", f"/bookings/{booked['bookingId']}", token=owner)
    assert status == 200 and "notes" not in read, read
    longest = "é" * 128  # 128 characters, 768 once percent-encoded
    status, _, body = call(stack, "DELETE", f"/customers/{quote(longest)}/personal-data", token=admin)
    assert (status, body["customerId"], body["bookings"]) == (202, longest, 0), body
    status, _, problem = call(stack, "DELETE", f"/customers/{quote(longest + 'é')}/personal-data", token=admin)
    assert (status, problem["code"]) == (400, "VALIDATION_FAILED"), problem
    assert problem["errors"][0]["field"] == "path.customerId", problem
