"""The publisher's way out: PutEvents in calls of at most 10 entries and 256 KB, only the refused
entries sent again, what is still refused handed back; and the publisher's partial batch response,
which names the first record whose event was refused (Lambda retries from there, in stream order)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from services.booking import publisher_handler
from services.booking.adapters.event_bus import MAX_BYTES, EventBridgeBus, entry_bytes
from services.booking.domain_events import DomainEvent
from services.common.observability import metrics


def event(number: int, size: int = 0) -> DomainEvent:
    detail = {"id": f"evt_{number}", "type": "booking.created", "data": {"bookingId": f"bkg_{number}"}}
    if size:
        detail["padding"] = "x" * size
    return DomainEvent("booking.created", detail, f"Root=1-5f84c7a1-{number:024x};Parent=53995c3f42cd8ad8;Sampled=1")


def entries(answer: list[bool]) -> dict[str, Any]:
    """A PutEvents answer: True for an entry accepted, False for one refused."""
    return {
        "FailedEntryCount": answer.count(False),
        "Entries": [
            {"EventId": f"id-{i}"} if ok else {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            for i, ok in enumerate(answer)
        ],
    }


def put(details: list[int]) -> dict[str, Any]:
    """The expected PutEvents request for these events."""
    return {
        "Entries": [
            {
                "Source": "appointments",
                "DetailType": "booking.created",
                "Detail": event(n).detail_json(),
                "EventBusName": "appointments-test",
                "TraceHeader": ANY,
            }
            for n in details
        ]
    }


@pytest.fixture(autouse=True)
def _no_metrics_left_behind() -> Any:
    """The counts the bus adds outside a handler are not flushed into a later test's invocation."""
    yield
    metrics.clear_metrics()


@pytest.fixture
def client() -> Any:
    return boto3.client("events", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_twenty_five_events_go_in_calls_of_ten_and_only_refused_entries_are_sent_again(client: Any) -> None:
    sleeps: list[float] = []
    bus = EventBridgeBus(client, "appointments-test", sleep=sleeps.append)
    with Stubber(client) as stub:
        stub.add_response("put_events", entries([True] * 10), put(list(range(10))))
        stub.add_response("put_events", entries([True, False] + [True] * 8), put(list(range(10, 20))))
        stub.add_response("put_events", entries([False, True, True, True, False]), put(list(range(20, 25))))
        # Again: the three refused ones only, in their order, in one call.
        stub.add_response("put_events", entries([True, True, False]), put([11, 20, 24]))
        stub.add_response("put_events", entries([True]), put([24]))
        assert bus.publish([event(n) for n in range(25)]) == []
        stub.assert_no_pending_responses()
    assert sleeps == [0.1, 0.2]


def test_what_is_still_refused_after_the_retries_is_handed_back(client: Any) -> None:
    bus = EventBridgeBus(client, "appointments-test", sleep=lambda _: None, attempts=3)
    with Stubber(client) as stub:
        stub.add_response("put_events", entries([True, False]), put([1, 2]))
        stub.add_response("put_events", entries([False]), put([2]))
        stub.add_response("put_events", entries([False]), put([2]))
        assert [e.event_id for e in bus.publish([event(1), event(2)])] == ["evt_2"]


def test_calls_stay_under_256_kb_and_an_event_of_256_kb_is_left_out_without_a_call(client: Any) -> None:
    big = [event(n, size=100_000) for n in range(3)]  # two fit in a call, not three
    bus = EventBridgeBus(client, "appointments-test")
    calls = bus._calls(big)
    assert [len(call) for call in calls] == [2, 1]
    assert all(sum(entry_bytes(e) for e in call) < MAX_BYTES for call in calls)
    # Exactly at the limit is over it ("less than 256KB"), as AWS and the emulator refuse it.
    padding = MAX_BYTES - entry_bytes(event(1))
    at_limit = event(1, size=padding - len(',"padding":""'))
    assert entry_bytes(at_limit) == MAX_BYTES
    with Stubber(client) as stub:
        stub.add_response("put_events", entries([True]), put([2]))
        # no retry can put it: logged and counted, never handed back to hold up the stream
        assert bus.publish([at_limit, event(2)]) == []
        stub.assert_no_pending_responses()


def record(sequence: str, number: int | None) -> dict[str, Any]:
    """A stream record whose change is event `number` (None: bookkeeping, no event)."""
    return {"eventID": str(number), "dynamodb": {"SequenceNumber": sequence}, "number": number}


class RefusingBus:
    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.published: set[str] = set()

    def publish(self, events: list[DomainEvent]) -> list[DomainEvent]:
        self.published |= {e.event_id for e in events}
        return [e for e in events if e.event_id in self.refused]


def test_an_unreadable_record_is_left_out_and_the_events_around_it_go_out(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [record("100", 1), record("200", 2), record("300", 3)]

    def reading(r: dict[str, Any]) -> DomainEvent:
        if r["number"] == 2:
            raise KeyError("bookingId")
        return event(r["number"])

    monkeypatch.setattr(publisher_handler, "domain_event", reading)
    bus = RefusingBus(set())
    monkeypatch.setattr(publisher_handler, "bus", lambda: bus)
    assert publisher_handler.publish(records) == {"batchItemFailures": []}
    assert bus.published == {"evt_1", "evt_3"}


def test_the_first_record_whose_event_is_refused_is_reported_and_lambda_retries_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [record("100", 1), record("200", None), record("300", 3), record("400", 4), record("500", 5)]
    monkeypatch.setattr(publisher_handler, "domain_event", lambda r: event(r["number"]) if r["number"] else None)
    bus = RefusingBus({"evt_3", "evt_5"})
    monkeypatch.setattr(publisher_handler, "bus", lambda: bus)
    assert publisher_handler.publish(records) == {"batchItemFailures": [{"itemIdentifier": "300"}]}
    assert bus.published == {"evt_1", "evt_3", "evt_4", "evt_5"}
    bus.refused = set()
    assert publisher_handler.publish(records) == {"batchItemFailures": []}
