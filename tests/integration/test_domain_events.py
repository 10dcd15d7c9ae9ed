"""Domain events through the local stack (decision 0027): every change type, made through the API (and
the waitlist function, and the stack's clock), puts exactly one event on the bus, valid against its
schema in docs/events/; nothing else is published; and with half of PutEvents' entries refused, every
change still arrives, any repeat carrying the same `detail.id` and the same detail. A stack of its
own, since its clock only moves forward and its faults are its own."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from local.lambda_runtime.event_source_mapping import MappingSettings
from local.lambda_runtime.stream_records import lambda_record
from local.stack import LocalStack, StackConfig, aws_client
from services.booking.domain_events import DETAIL_TYPES, domain_event
from tests.integration.conftest import call, eventually, token
from tests.integration.test_holds import EVERY_DAY, at

pytestmark = pytest.mark.slow

SCHEMAS = Path(__file__).parents[2] / "docs" / "events"
OWNER = "events-owner"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(StackConfig(port=0, state_dir=tmp_path_factory.mktemp("events"), echo=None, seed=False))
    running.start()
    yield running
    running.stop()


def journal(stack: LocalStack, after: int = 0) -> list[dict[str, Any]]:
    status, _, body = call(stack, "GET", f"/_local/events?after={after}")
    assert status == 200, body
    return list(body["events"])


def settled(stack: LocalStack) -> None:
    """Every change made so far has been through the publisher (the mapping caught up with the stream)."""
    assert stack.publisher_mapping is not None and stack.publisher_mapping.wait_caught_up()


def last_sequence(stack: LocalStack) -> int:
    settled(stack)
    status, _, body = call(stack, "GET", "/_local/events?after=0")
    assert status == 200, body
    return int(body["last"])


def validators() -> dict[str, Draft202012Validator]:
    """detail-type → the validator of its schema; every schema's types, all of them known."""
    found = {}
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        for detail_type in schema["properties"]["type"]["enum"]:
            found[detail_type] = Draft202012Validator(schema, format_checker=FormatChecker())
    return found


def test_the_schemas_cover_every_detail_type_the_publisher_sends_and_the_index_lists_them() -> None:
    assert set(validators()) == DETAIL_TYPES
    index = (SCHEMAS / "README.md").read_text()
    assert all(f"| `{detail_type}` |" in index for detail_type in DETAIL_TYPES)


class Api:
    """Requests as the provider's owner, or as a customer named `who`, with tokens valid at the stack's now."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def __call__(self, method: str, path: str, who: str | None = None, body: Any = None, expect: int = 200) -> Any:
        caller = token(self.stack, OWNER, ["providers"]) if who is None else token(self.stack, who, ["customers"])
        status, _, answer = call(self.stack, method, path, token=caller, body=body)
        assert status == expect, (method, path, status, answer)
        return answer


ENTITY_IDS = {"booking": "bookingId", "hold": "holdId", "waitlist": "waitlistId", "series": "seriesId"}


def entity_of(event: dict[str, Any]) -> str:
    """The id of what an event is about (a schedule's: its provider's)."""
    return str(event["data"][ENTITY_IDS.get(event["type"].split(".")[0], "providerId")])


def test_every_change_puts_exactly_one_event_with_its_schema_on_the_bus(stack: LocalStack) -> None:
    api = Api(stack)
    expected: Counter[tuple[str, str]] = Counter()
    start_after = last_sequence(stack)
    day = datetime.fromtimestamp(stack.clock.now(), UTC).date() + timedelta(days=1)

    pid = api("POST", "/providers", body={"name": "Events Clinic", "timeZone": "UTC"}, expect=201)["providerId"]
    api("PUT", f"/providers/{pid}/schedule", body={"weekly": EVERY_DAY})
    later: date = day + timedelta(days=10)
    api("PUT", f"/providers/{pid}/overrides/{later}", body={"intervals": []})
    api("DELETE", f"/providers/{pid}/overrides/{later}", expect=204)
    expected[("schedule.changed", pid)] += 3
    visit = {"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0, "holdMinutes": 5}
    sid = api("POST", f"/providers/{pid}/services", body=visit, expect=201)["serviceId"]
    approval = {**visit, "name": "Consult", "requiresApproval": True, "approvalTimeoutHours": 1}
    consult = api("POST", f"/providers/{pid}/services", body=approval, expect=201)["serviceId"]

    def book(who: str, hour: int, minute: int = 0, service: str = sid, **extra: Any) -> dict[str, Any]:
        body = {"providerId": pid, "serviceId": service, "start": at(day, hour, minute), **extra}
        booking = api("POST", "/bookings", who, body, expect=201)
        expected[("booking.created", booking["bookingId"])] += 1
        return dict(booking)

    # A booking moved and cancelled; another, later marked a no-show.
    moved = book("ann", 8)
    api("POST", f"/bookings/{moved['bookingId']}/reschedule", "ann", {"start": at(day, 8, 30)})
    api("POST", f"/bookings/{moved['bookingId']}/cancel", "ann", {"reason": "changed plans"})
    expected[("booking.rescheduled", moved["bookingId"])] += 1
    expected[("booking.cancelled", moved["bookingId"])] += 1
    absent = book("bob", 9)

    # Approval: approved, declined, and one left undecided past its hour.
    approved, declined = book("cat", 10, service=consult), book("dan", 11, service=consult)
    api("POST", f"/bookings/{approved['bookingId']}/approve", body={})
    api("POST", f"/bookings/{declined['bookingId']}/decline", body={"reason": "fully booked"})
    expected[("booking.approved", approved["bookingId"])] += 1
    expected[("booking.declined", declined["bookingId"])] += 1
    undecided = book("eve", 12, service=consult)

    # Holds: released, booked, and one left to lapse.
    released = api("POST", "/holds", "fay", {"providerId": pid, "serviceId": sid, "start": at(day, 13)}, expect=201)
    api("DELETE", f"/holds/{released['holdId']}", "fay", expect=204)
    converted = api("POST", "/holds", "gus", {"providerId": pid, "serviceId": sid, "start": at(day, 13)}, expect=201)
    book("gus", 13, holdId=converted["holdId"])
    lapsing = api("POST", "/holds", "gil", {"providerId": pid, "serviceId": sid, "start": at(day, 13, 30)}, expect=201)
    expected.update({("hold.created", released["holdId"]): 1, ("hold.released", released["holdId"]): 1})
    expected.update({("hold.created", converted["holdId"]): 1, ("hold.converted", converted["holdId"]): 1})
    expected.update({("hold.created", lapsing["holdId"]): 1, ("hold.expired", lapsing["holdId"]): 1})

    # A series, booked and cancelled.
    series = api(
        "POST",
        "/bookings",
        "hal",
        {"providerId": pid, "serviceId": sid, "start": at(day, 14), "recurrence": {"frequency": "DAILY", "count": 2}},
        expect=201,
    )
    api("POST", f"/series/{series['seriesId']}/cancel", "hal", {"reason": "moving away"})
    expected.update({("series.created", series["seriesId"]): 1, ("series.cancelled", series["seriesId"]): 1})
    for occurrence in series["items"]:
        expected[("booking.created", occurrence["bookingId"])] += 1
        expected[("booking.cancelled", occurrence["bookingId"])] += 1

    # The waitlist: an offer booked, one released, one left to lapse, and an entry that leaves.
    def wait_for(who: str, hour: int) -> dict[str, Any]:
        filler = book(f"filler-{hour}", hour)
        body = {"providerId": pid, "serviceId": sid, "from": at(day, hour), "to": at(day, hour, 30)}
        entry = api("POST", "/waitlist", who, body, expect=201)
        expected[("waitlist.joined", entry["waitlistId"])] += 1
        return {**entry, "filler": filler["bookingId"]}

    leaving = wait_for("ivy", 8)
    api("DELETE", f"/waitlist/{leaving['waitlistId']}", "ivy", expect=204)
    expected[("waitlist.cancelled", leaving["waitlistId"])] += 1
    offers = {}
    for who, hour in (("jon", 15), ("kim", 16), ("lou", 17)):
        offers[who] = wait_for(who, hour)
    for who, entry in offers.items():
        api("POST", f"/bookings/{entry['filler']}/cancel", body={"reason": "freed for the line"})
        expected[("booking.cancelled", entry["filler"])] += 1
        offered = eventually(
            lambda entry=entry, who=who: (
                (e := api("GET", f"/waitlist/{entry['waitlistId']}", who))["status"] == "OFFERED" and e
            )
        )
        assert offered, who
        expected[("waitlist.offered", entry["waitlistId"])] += 1
        expected[("hold.created", offered["holdId"])] += 1
        entry["holdId"] = offered["holdId"]
        entry["start"] = api("GET", f"/holds/{offered['holdId']}", who)["start"]
    jon, kim, lou = offers["jon"], offers["kim"], offers["lou"]
    booked = api(
        "POST",
        "/bookings",
        "jon",
        {"providerId": pid, "serviceId": sid, "start": jon["start"], "holdId": jon["holdId"]},
        expect=201,
    )
    expected[("booking.created", booked["bookingId"])] += 1
    expected.update({("hold.converted", jon["holdId"]): 1, ("waitlist.booked", jon["waitlistId"]): 1})
    api("DELETE", f"/holds/{kim['holdId']}", "kim", expect=204)
    expected.update({("hold.released", kim["holdId"]): 1, ("waitlist.declined", kim["waitlistId"]): 1})

    # Two days on, with no request: the minute's sweep writes down the lapsed hold and the undecided
    # booking, and the lapsed offer with its hold. Then the no-show can be marked, and a decision on
    # the expired booking is refused.
    settled(stack)
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 2 * 86_400})[0] == 200
    expected[("booking.expired", undecided["bookingId"])] += 1
    expected.update({("waitlist.expired", lou["waitlistId"]): 1, ("hold.expired", lou["holdId"]): 1})
    lapsed = {(undecided["bookingId"], "booking.expired"), (lapsing["holdId"], "hold.expired")}
    lapsed |= {(lou["holdId"], "hold.expired"), (lou["waitlistId"], "waitlist.expired")}

    def written_down() -> set[tuple[str, str]]:
        settled(stack)
        return {(entity_of(d), d["type"]) for d in (json.loads(e["detail"]) for e in journal(stack, start_after))}

    assert eventually(lambda: lapsed <= written_down()), lapsed - written_down()
    api("POST", f"/bookings/{absent['bookingId']}/no-show", body={})
    expected[("booking.no_show", absent["bookingId"])] += 1
    api("POST", f"/bookings/{undecided['bookingId']}/approve", body={}, expect=409)

    settled(stack)
    events = journal(stack, start_after)
    by_id: dict[str, dict[str, Any]] = {}
    for entry in events:
        detail = json.loads(entry["detail"])
        assert entry["source"] == "appointments" and entry["detailType"] == detail["type"], entry
        assert entry["eventBusName"] == f"appointments-{stack.config.stage}"
        # Where nothing failed, nothing is put twice: each change once on the bus, under its own id.
        assert detail["id"] not in by_id, (detail, by_id[detail["id"]])
        by_id[detail["id"]] = detail
    checks = validators()
    for detail in by_id.values():
        errors = [error.message for error in checks[detail["type"]].iter_errors(detail)]
        assert not errors, (detail, errors)
    published = Counter((detail["type"], entity_of(detail)) for detail in by_id.values())
    assert published == expected, (published - expected, expected - published)
    # Each entity's events carry its versions in the order they were made.
    moved_versions = [d["data"]["version"] for d in by_id.values() if d["data"].get("bookingId") == moved["bookingId"]]
    assert sorted(moved_versions) == [1, 2, 3]
    rescheduled = next(d for d in by_id.values() if d["type"] == "booking.rescheduled")
    assert rescheduled["data"]["previous"]["start"] == at(day, 8) and rescheduled["data"]["start"] == at(day, 8, 30)
    # The trace of the request (or sweep) that made the change goes with its event (PutEvents'
    # TraceHeader), for the targets to continue; but a lapsed hold TTL removed before the sweep came
    # (the emulator's TTL is quick) was nobody's request.
    untraced = [json.loads(e["detail"]) for e in events if not str(e["traceHeader"]).startswith("Root=1-")]
    for detail in untraced:  # TTL's removal came first: the expiry is published from it, timed at the expiry
        assert detail["type"] == "hold.expired" and detail["timestamp"] == detail["data"]["expiresAt"], detail
    assert {d["data"]["status"] for d in by_id.values() if d["type"] == "hold.expired"} == {"EXPIRED"}


def faults(stack: LocalStack, plan: dict[str, Any]) -> dict[str, Any]:
    status, _, body = call(stack, "PUT", "/_local/faults", body=plan)
    assert status == 200, body
    return dict(body)


def test_with_half_of_the_entries_refused_every_change_arrives_once_per_dedupe_key(stack: LocalStack) -> None:
    """Half of PutEvents' entries refused at random: each refused entry is put again, a record whose
    event is refused four times fails the batch from there, and Lambda's retry puts it and the rest
    again. Whatever the draw, every change arrives, and copies under one id are the same event
    (tests/unit/test_event_bus.py proves the retry from the first refused record every time)."""
    api = Api(stack)
    after = last_sequence(stack)
    day = datetime.fromtimestamp(stack.clock.now(), UTC).date() + timedelta(days=2)
    pid = api("POST", "/providers", body={"name": "Flaky Bus Clinic", "timeZone": "UTC"}, expect=201)["providerId"]
    api("PUT", f"/providers/{pid}/schedule", body={"weekly": EVERY_DAY})
    visit = {"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0}
    sid = api("POST", f"/providers/{pid}/services", body=visit, expect=201)["serviceId"]
    faults(stack, {"eventsPutFailure": 0.5})

    def book(n: int) -> str:
        body = {"providerId": pid, "serviceId": sid, "start": at(day, 8 + n // 2, 30 * (n % 2))}
        return str(api("POST", "/bookings", f"flaky-{n}", body, expect=201)["bookingId"])

    try:
        with ThreadPoolExecutor(5) as pool:  # at once, so that batches hold several records
            made = list(pool.map(book, range(20)))
        settled(stack)
    finally:
        injected = faults(stack, {})
    assert stack.publisher_mapping is not None and stack.publisher_mapping.dead_lettered == 0
    entries = journal(stack, after)
    assert call(stack, "GET", "/_local/events?after=0")[2]["injectedFailures"] > 0, injected
    details: dict[str, list[str]] = {}
    for entry in entries:
        detail = json.loads(entry["detail"])
        details.setdefault(detail["id"], []).append(entry["detail"])
    # Downstream of the dedupe key nothing is lost or doubled: one id per change, and a repeat (a
    # batch retried from its first refused record) is byte for byte the same event.
    assert all(len(set(copies)) == 1 for copies in details.values())
    created = Counter(
        json.loads(copies[0])["data"]["bookingId"]
        for copies in details.values()
        if json.loads(copies[0])["type"] == "booking.created"
    )
    assert created == Counter(made)


def test_the_publishers_filter_lets_through_every_record_that_is_an_event(stack: LocalStack) -> None:
    """Held to the module's whole stream (every change the tests above made): a record the mapping's
    filter discards is never published, so it must be one `domain_event` makes nothing of."""
    assert stack.data is not None and stack.emulator is not None
    settings = MappingSettings.from_template("booking.yaml")
    assert settings.event_filter is not None
    streams = aws_client("dynamodbstreams", stack.emulator.endpoint)
    arn = stack.data.table_stream_arn
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records: list[dict[str, Any]] = []
    position = iterator["ShardIterator"]
    while True:
        page = streams.get_records(ShardIterator=position, Limit=1000)
        records += [lambda_record(record, arn) for record in page["Records"]]
        if not page["Records"]:
            break
        position = page["NextShardIterator"]
    kept = [record for record in records if settings.event_filter.keeps(record)]
    events = [record for record in records if domain_event(record) is not None]
    assert all(settings.event_filter.keeps(record) for record in events)
    # and it filters: busy blocks, counters, markers and removals never invoke the publisher
    assert len(events) > 50 and len(kept) < len(records) / 2, (len(events), len(kept), len(records))
    # (a lapsed hold's removal by TTL passes too, when TTL comes before the sweep: test_lapsed_hold_events.py)
    assert {record["eventName"] for record in events} >= {"INSERT", "MODIFY"}
