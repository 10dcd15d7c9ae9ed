"""Bad requests to the availability API: each gets a 4xx problem, never a 5xx, and changes nothing.

Two layers answer. API Gateway's request validator (the document turns it on; the local gateway
emulates it) stops what breaks the schemas (a missing required parameter, a body its model refuses)
before any function runs, with its own problem: `VALIDATION_FAILED` on `body`, or naming the missing
parameters in `detail`. Everything else reaches the function, whose problem names the field. For each
case the gateway stops, the test also sends the request straight to the function, to show that the
function would have named the field too: the two layers agree on what is wrong, and only the gateway
is vaguer about where."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from local.stack import LocalStack
from tests.integration.conftest import call, call_function, token

OWNER = "bad-input-owner"
MISSING_PROVIDER = "prv_" + "0" * 32
MISSING_SERVICE = "svc_" + "0" * 32


@pytest.fixture(scope="module")
def ids(stack: LocalStack) -> dict[str, str]:
    owner = token(stack, OWNER, ["providers"])
    provider = call(stack, "POST", "/providers", token=owner, body={"name": "Bad Input Clinic", "timeZone": "UTC"})[2]
    pid = provider["providerId"]
    call(
        stack,
        "PUT",
        f"/providers/{pid}/schedule",
        token=owner,
        body={"weekly": {"mon": [{"start": "09:00", "end": "17:00"}]}},
    )
    service = call(
        stack, "POST", f"/providers/{pid}/services", token=owner, body={"name": "Visit", "durationMinutes": 30}
    )[2]
    return {"provider": pid, "service": service["serviceId"]}


def mon(*intervals: tuple[str, str]) -> dict[str, Any]:
    return {"weekly": {"mon": [{"start": start, "end": end} for start, end in intervals]}}


WINDOW = "from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"

# (case, method, path template, body, extra headers, expected status, expected field or None)
CASES: list[tuple[str, str, str, Any, dict[str, str], int, str | None]] = [
    ("unknown zone", "POST", "/providers", {"name": "A", "timeZone": "Mars/Olympus_Mons"}, {}, 400, "body.timeZone"),
    ("zone as a path", "POST", "/providers", {"name": "A", "timeZone": "../../etc/passwd"}, {}, 400, "body.timeZone"),
    ("zone of wrong type", "POST", "/providers", {"name": "A", "timeZone": 1}, {}, 400, "body.timeZone"),
    ("missing name", "POST", "/providers", {"timeZone": "UTC"}, {}, 400, "body.name"),
    ("empty name", "POST", "/providers", {"name": "   ", "timeZone": "UTC"}, {}, 400, "body.name"),
    ("oversize name", "POST", "/providers", {"name": "x" * 500, "timeZone": "UTC"}, {}, 400, "body.name"),
    ("name of wrong type", "POST", "/providers", {"name": 123, "timeZone": "UTC"}, {}, 400, "body.name"),
    ("ownerSub null", "POST", "/providers", {"name": "A", "timeZone": "UTC", "ownerSub": None}, {}, 400, "body.ownerSub"),
    ("misspelt field", "POST", "/providers", {"name": "A", "timezone": "UTC"}, {}, 400, "body.timezone"),
    ("missing body", "POST", "/providers", None, {}, 400, "body"),
    ("malformed JSON", "POST", "/providers", b'{"name": ', {}, 400, "body"),
    ("body is a list", "POST", "/providers", [], {}, 400, "body"),
    ("end before start", "PUT", "/providers/{provider}/schedule", mon(("12:00", "09:00")), {}, 400, "body.weekly.mon"),
    ("overlapping intervals", "PUT", "/providers/{provider}/schedule", mon(("09:00", "12:00"), ("11:00", "13:00")), {}, 400, "body.weekly.mon"),
    ("25:00", "PUT", "/providers/{provider}/schedule", mon(("09:00", "25:00")), {}, 400, "body.weekly.mon[0].end"),
    ("24:00 as a start", "PUT", "/providers/{provider}/schedule", mon(("24:00", "24:00")), {}, 400, "body.weekly.mon[0].start"),
    ("00:00 as an end", "PUT", "/providers/{provider}/schedule", mon(("00:00", "00:00")), {}, 400, "body.weekly.mon[0].end"),
    ("time without two digits", "PUT", "/providers/{provider}/schedule", mon(("9:00", "12:00")), {}, 400, "body.weekly.mon[0].start"),
    ("unknown weekday", "PUT", "/providers/{provider}/schedule", {"weekly": {"funday": []}}, {}, 400, "body.weekly.funday"),
    ("missing weekly", "PUT", "/providers/{provider}/schedule", {}, {}, 400, "body.weekly"),
    ("intervals of wrong type", "PUT", "/providers/{provider}/schedule", {"weekly": {"mon": "9-5"}}, {}, 400, "body.weekly.mon"),
    ("too many intervals", "PUT", "/providers/{provider}/schedule", mon(*[(f"{h:02d}:00", f"{h:02d}:30") for h in range(13)]), {}, 400, "body.weekly.mon"),
    ("If-Match not a version", "PUT", "/providers/{provider}/schedule", mon(("09:00", "10:00")), {"If-Match": "abc"}, 400, "header.If-Match"),
    ("If-Match of 5,000 digits", "PUT", "/providers/{provider}/schedule", mon(("09:00", "10:00")), {"If-Match": '"' + "9" * 5000 + '"'}, 400, "header.If-Match"),
    ("If-Match of 40 digits", "PUT", "/providers/{provider}/schedule", mon(("09:00", "10:00")), {"If-Match": '"' + "9" * 40 + '"'}, 400, "header.If-Match"),
    ("If-Match of a superscript two", "PUT", "/providers/{provider}/schedule", mon(("09:00", "10:00")), {"If-Match": '"²"'}, 400, "header.If-Match"),
    ("If-Match unquoted", "PUT", "/providers/{provider}/schedule", mon(("09:00", "10:00")), {"If-Match": "1"}, 400, "header.If-Match"),
    ("impossible date", "PUT", "/providers/{provider}/overrides/2026-02-30", {"intervals": []}, {}, 400, "path.date"),
    ("date long past", "PUT", "/providers/{provider}/overrides/2020-01-01", {"intervals": []}, {}, 400, "path.date"),
    ("override without intervals", "PUT", "/providers/{provider}/overrides/2026-12-24", {}, {}, 400, "body.intervals"),
    ("duration 0", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 0}, {}, 400, "body.durationMinutes"),
    ("capacity 0", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 30, "capacity": 0}, {}, 400, "body.capacity"),
    ("hold of 31 minutes", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 30, "holdMinutes": 31}, {}, 400, "body.holdMinutes"),
    ("daily limit 0", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 30, "maxPerCustomerPerDay": 0}, {}, 400, "body.maxPerCustomerPerDay"),
    ("weekly limit as a string", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 30, "maxPerCustomerPerWeek": "2"}, {}, 400, "body.maxPerCustomerPerWeek"),
    ("provider's daily limit 0", "POST", "/providers", {"name": "P", "timeZone": "UTC", "maxBookingsPerDay": 0}, {}, 400, "body.maxBookingsPerDay"),
    ("negative buffer", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 30, "bufferBeforeMinutes": -5}, {}, 400, "body.bufferBeforeMinutes"),
    ("duration as a string", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": "30"}, {}, 400, "body.durationMinutes"),
    ("step as a fraction", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 30, "slotStepMinutes": 7.5}, {}, 400, "body.slotStepMinutes"),
    ("booking window too long", "POST", "/providers/{provider}/services", {"name": "S", "durationMinutes": 30, "maxAdvanceDays": 1000}, {}, 400, "body.maxAdvanceDays"),
    ("service for unknown provider", "POST", f"/providers/{MISSING_PROVIDER}/services", {"name": "S", "durationMinutes": 30}, {}, 404, None),
    ("window over 62 days", "GET", "/providers/{provider}/slots?serviceId={service}&from=2026-12-01T00:00:00Z&to=2027-02-02T00:00:01Z", None, {}, 400, "query.to"),
    ("window ends before it starts", "GET", "/providers/{provider}/slots?serviceId={service}&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", None, {}, 400, "query.to"),
    ("instant without offset", "GET", "/providers/{provider}/slots?serviceId={service}&from=2026-12-01T00:00:00&to=2026-12-02T00:00:00Z", None, {}, 400, "query.from"),
    ("instant in year 1", "GET", "/providers/{provider}/slots?serviceId={service}&from=0001-01-01T00:00:00%2B14:00&to=0001-01-02T00:00:00Z", None, {}, 400, "query.from"),
    ("instant in year 9999", "GET", "/providers/{provider}/slots?serviceId={service}&from=9999-12-30T00:00:00Z&to=9999-12-31T23:59:59-12:00", None, {}, 400, "query.from"),
    ("instant that is not one", "GET", "/providers/{provider}/slots?serviceId={service}&from=yesterday&to=2026-12-02T00:00:00Z", None, {}, 400, "query.from"),
    ("missing serviceId", "GET", "/providers/{provider}/slots?" + WINDOW, None, {}, 400, "query.serviceId"),
    ("malformed serviceId", "GET", "/providers/{provider}/slots?serviceId=svc_nope&" + WINDOW, None, {}, 400, "query.serviceId"),
    ("unknown service", "GET", f"/providers/{{provider}}/slots?serviceId={MISSING_SERVICE}&" + WINDOW, None, {}, 404, None),
    ("unknown provider", "GET", f"/providers/{MISSING_PROVIDER}", None, {}, 404, None),
    ("malformed providerId", "GET", "/providers/not-an-id", None, {}, 400, "path.providerId"),
    ("limit 0", "GET", "/providers?limit=0", None, {}, 400, "query.limit"),
    ("limit not a number", "GET", "/providers?limit=ten", None, {}, 400, "query.limit"),
    ("forged cursor", "GET", "/providers?cursor=eyJQSyI6IDF9", None, {}, 400, "query.cursor"),
    ("cursor that is not base64", "GET", "/providers?cursor=%%%", None, {}, 400, "query.cursor"),
    ("cursor nested past any parser", "GET", "/providers?cursor=" + base64.urlsafe_b64encode(b"[" * 1200).decode(), None, {}, 400, "query.cursor"),
]  # fmt: skip


# The cases API Gateway's validator stops, and the gateway response it answers them with. Not an
# unknown field ("unknown weekday"): the importer does not support `additionalProperties` in models,
# so the function refuses it, naming it.
STOPPED_AT_THE_GATEWAY = {
    **dict.fromkeys(
        [
            "ownerSub null", "zone of wrong type", "missing name", "oversize name", "name of wrong type", "misspelt field",
            # the document lists the zone names and states the name's and an interval end's patterns
            "unknown zone", "zone as a path", "empty name", "00:00 as an end",
            "missing body", "malformed JSON", "body is a list", "25:00", "24:00 as a start", "time without two digits",
            "missing weekly", "intervals of wrong type", "too many intervals",
            "override without intervals", "duration 0", "capacity 0", "negative buffer", "duration as a string",
            "hold of 31 minutes", "daily limit 0", "weekly limit as a string", "provider's daily limit 0",
            "step as a fraction", "booking window too long",
        ],
        "BAD_REQUEST_BODY",
    ),
    "missing serviceId": "BAD_REQUEST_PARAMETERS",
}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "headers", "status", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_request_gets_a_problem_naming_the_field(
    stack: LocalStack,
    ids: dict[str, str],
    case: str,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    owner = token(stack, OWNER, ["providers"])
    schedule_before = call(stack, "GET", f"/providers/{ids['provider']}/schedule", token=owner)[2]
    assert stack.lambdas is not None
    availability = stack.lambdas.functions["AvailabilityFunction"]
    invoked_before = availability.invocations
    raw = body if isinstance(body, bytes) else None
    sent: dict[str, Any] = {"token": owner, "body": None if raw else body, "raw": raw, "headers": headers}
    answer_status, answer_headers, problem = call(stack, method, path.format(**ids), **sent)
    assert answer_status == status, problem
    assert answer_headers["Content-Type"] == "application/problem+json"
    assert problem["status"] == status and problem["code"] and problem["title"] and problem["detail"]
    stopped = STOPPED_AT_THE_GATEWAY.get(case)
    if stopped is None:
        assert availability.invocations == invoked_before + 1  # the function answered
        if field is not None:
            assert problem["code"] == ("INVALID_CURSOR" if field == "query.cursor" else "VALIDATION_FAILED")
            assert field in [error["field"] for error in problem["errors"]], problem["errors"]
    else:
        assert availability.invocations == invoked_before  # the gateway answered; no function ran
        assert problem["code"] == "VALIDATION_FAILED"
        if stopped == "BAD_REQUEST_BODY":
            assert (problem["detail"], problem["errors"]) == (
                "Invalid request body",
                [{"field": "body", "message": "Invalid request body"}],
            )
        else:
            assert field is not None
            assert problem["detail"] == f"Missing required request parameters: [{field.split('.')[-1]}]"
        # and the function, asked directly, names the field
        direct_status, _, direct = call_function(stack, method, path.format(**ids), **sent)
        assert (direct_status, direct["code"]) == (400, "VALIDATION_FAILED")
        assert field in [error["field"] for error in direct["errors"]], direct["errors"]
    # and nothing changed
    assert call(stack, "GET", f"/providers/{ids['provider']}/schedule", token=owner)[2] == schedule_before


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
