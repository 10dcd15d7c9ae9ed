"""The local event source mapping's delivery rules, with a fake function and a fake queue."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from local.lambda_runtime.event_filtering import EventFilter
from local.lambda_runtime.event_source_mapping import EventSourceMapping, MappingSettings
from local.lambda_runtime.function_runtime import Invocation


def record(sequence: int, poison: bool = False) -> dict[str, Any]:
    keys = {"PK": {"S": "POISON" if poison else f"OK#{sequence}"}}
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "dynamodb": {"SequenceNumber": str(sequence), "Keys": keys},
    }


class FakeFunction:
    """Fails its whole invocation on a poison record, or reports it as a batch item failure."""

    def __init__(self, partial: bool) -> None:
        self.partial = partial
        self.seen: list[list[str]] = []
        self.spec = type("Spec", (), {"name": "fake-consumer"})()

    def invoke(self, event: dict[str, Any]) -> Invocation:
        sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.seen.append(sequences)
        poisoned = [
            r["dynamodb"]["SequenceNumber"] for r in event["Records"] if r["dynamodb"]["Keys"]["PK"]["S"] == "POISON"
        ]
        if poisoned and not self.partial:
            return Invocation("r", error={"errorType": "KeyError", "errorMessage": "bookingId"})
        return Invocation("r", payload={"batchItemFailures": [{"itemIdentifier": s} for s in poisoned]})


class FakeQueue:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.bodies.append(MessageBody)


def runner(function: FakeFunction, queue: FakeQueue, bisect: bool) -> EventSourceMapping:
    settings = MappingSettings(
        batch_size=100, max_retries=2, bisect=bisect, batching_window_seconds=0, partial_batch_responses=True
    )
    return EventSourceMapping(None, queue, "arn:stream", function, settings, "queue-url")  # type: ignore[arg-type]


def test_bisection_isolates_the_poison_record_and_everything_else_is_delivered() -> None:
    function, queue = FakeFunction(partial=False), FakeQueue()
    batch = [record(n, poison=(n == 5)) for n in range(1, 9)]
    feeder = runner(function, queue, bisect=True)
    feeder._deliver(batch)
    assert len(queue.bodies) == 1 and '"startSequenceNumber": "5"' in queue.bodies[0]
    assert feeder.delivered == 7 and feeder.dead_lettered == 1
    assert ["5"] in function.seen  # bisected down to the record itself
    # splitting did not consume the retry quota: the record itself was tried 1 + 2 times
    assert function.seen.count(["5"]) == 3 and '"approximateInvokeCount": 3' in queue.bodies[0]


def test_partial_batch_responses_retry_from_the_first_failure_only() -> None:
    function, queue = FakeFunction(partial=True), FakeQueue()
    feeder = runner(function, queue, bisect=False)
    feeder._deliver([record(1), record(2), record(3, poison=True), record(4)])
    assert function.seen[0] == ["1", "2", "3", "4"]
    assert function.seen[1:] == [["3", "4"]] * 2  # 1 and 2 were done; 3 and 4 are retried together, twice
    assert feeder.delivered == 2 and feeder.dead_lettered == 2


def test_an_exhausted_batch_sends_its_whole_range_to_the_destination_and_the_mapping_moves_on() -> None:
    # Given a batch whose third record keeps failing, without bisection
    function, queue = FakeFunction(partial=True), FakeQueue()
    feeder = runner(function, queue, bisect=False)
    # When its retries run out
    feeder._deliver([record(1), record(2), record(3, poison=True), record(4), record(5)])
    # Then one message names the failed batch's whole range, 3 to 5, as Lambda's does
    (message,) = [json.loads(body) for body in queue.bodies]
    info = message["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("3", "5", 3)
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    # and 4 and 5 were never delivered on their own with a fresh retry count
    assert ["4", "5"] not in function.seen and ["5"] not in function.seen
    assert feeder.delivered == 2 and feeder.dead_lettered == 3


def test_records_older_than_the_maximum_age_go_to_the_destination_without_an_invocation() -> None:
    function, queue = FakeFunction(partial=True), FakeQueue()
    now = 1_800_000_000.0
    settings = MappingSettings(
        batch_size=100,
        max_retries=2,
        bisect=False,
        batching_window_seconds=0,
        partial_batch_responses=True,
        max_record_age_seconds=3600,
    )
    feeder = EventSourceMapping(None, queue, "arn:stream", function, settings, "q", now=lambda: now)  # type: ignore[arg-type]
    aged = [record(n) for n in range(1, 5)]
    for sequence, item in enumerate(aged, start=1):
        item["dynamodb"]["ApproximateCreationDateTime"] = now - (7200 if sequence <= 2 else 60)
    feeder._deliver(aged)
    assert function.seen == [["3", "4"]]
    (message,) = [json.loads(body) for body in queue.bodies]
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert (message["DDBStreamBatchInfo"]["startSequenceNumber"], message["DDBStreamBatchInfo"]["batchSize"]) == (
        "1",
        2,
    )


class FakeStream:
    """A shard whose records arrive over time: `arrivals` is [(seconds after start, sequence), …]."""

    def __init__(self, arrivals: list[tuple[float, int]]) -> None:
        self.started = time.monotonic()
        self.arrivals = arrivals
        self.taken = 0

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-0"}]}}

    def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
        return {"ShardIterator": "it"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        ready = [sequence for at, sequence in self.arrivals[self.taken :] if at <= elapsed][:Limit]
        self.taken += len(ready)
        return {"Records": [record(sequence) for sequence in ready], "NextShardIterator": "it"}


class TimedFunction(FakeFunction):
    def __init__(self, started: float) -> None:
        super().__init__(partial=True)
        self.started = started
        self.at: list[float] = []

    def invoke(self, event: dict[str, Any]) -> Invocation:
        self.at.append(time.monotonic() - self.started)
        return super().invoke(event)


@pytest.mark.parametrize("window", [0.0, 1.0])
def test_the_batching_window_gathers_records_before_invoking(window: float) -> None:
    # Given three records written 0.1 s apart, and a fourth 1.6 s later
    stream = FakeStream([(0.0, 1), (0.1, 2), (0.2, 3), (1.6, 4)])
    function = TimedFunction(stream.started)
    settings = MappingSettings(
        batch_size=100, max_retries=0, bisect=False, batching_window_seconds=window, partial_batch_responses=True
    )
    feeder = EventSourceMapping(stream, FakeQueue(), "arn:s", function, settings, "q", poll_seconds=0.05)  # type: ignore[arg-type]
    feeder.start()
    deadline = time.monotonic() + 5
    while sum(len(batch) for batch in function.seen) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    feeder.stop()
    if window:
        # Then with a 1 s window the first three arrive together, a window after the first of them
        assert function.seen == [["1", "2", "3"], ["4"]]
        assert 0.9 <= function.at[0] < 1.5
    else:
        # and without one, each poll's records go at once
        assert len(function.seen) >= 3 and function.at[0] < 0.5
    assert [s for batch in function.seen for s in batch] == ["1", "2", "3", "4"]


def test_a_response_naming_a_record_not_in_the_batch_is_a_whole_batch_failure() -> None:
    class Confused(FakeFunction):
        def invoke(self, event: dict[str, Any]) -> Invocation:
            self.seen.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
            return Invocation("r", payload={"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]})

    function, queue = Confused(partial=True), FakeQueue()
    feeder = runner(function, queue, bisect=False)
    assert feeder._invoke([record(1), record(2)]) == (0, True)  # not a crash of the mapping's thread


def test_records_the_filter_discards_are_neither_delivered_nor_counted_in_a_batch_nor_failures() -> None:
    # Given a stream where only even records match the mapping's filter, and a batch of 2 to fill
    stream = FakeStream([(0.0, n) for n in range(1, 9)])
    function = FakeFunction(partial=True)
    only_even = {
        "Filters": [{"Pattern": json.dumps({"dynamodb": {"Keys": {"PK": {"S": [f"OK#{n}" for n in (2, 4, 6, 8)]}}}})}]
    }
    settings = MappingSettings(
        batch_size=2,
        max_retries=0,
        bisect=False,
        batching_window_seconds=1,  # a batch fills before its window closes
        partial_batch_responses=True,
        event_filter=EventFilter.from_criteria(only_even),
    )
    queue = FakeQueue()
    feeder = EventSourceMapping(stream, queue, "arn:s", function, settings, "q", poll_seconds=0.05)  # type: ignore[arg-type]
    # When the mapping has read the shard
    feeder.start()
    assert feeder.wait_caught_up(timeout=5)
    feeder.stop()
    # Then the function saw only the matching records, two to a batch (discarded ones took no room)
    assert [s for batch in function.seen for s in batch] == ["2", "4", "6", "8"]
    assert all(len(batch) == 2 for batch in function.seen)
    # and the others were discarded, not failed: nothing in the destination
    assert (feeder.delivered, feeder.filtered_out, feeder.dead_lettered, queue.bodies) == (4, 4, 0, [])
    assert feeder.invocations == len(function.seen)


def test_the_mapping_reads_the_templates_filter_criteria() -> None:
    settings = MappingSettings.from_template()
    assert settings.event_filter is not None and len(settings.event_filter.patterns) >= 1
