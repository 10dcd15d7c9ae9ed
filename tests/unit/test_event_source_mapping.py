"""The local event source mapping's delivery rules, with a fake function and a fake queue."""

from __future__ import annotations

from typing import Any

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


def test_partial_batch_responses_retry_from_the_first_failure_only() -> None:
    function, queue = FakeFunction(partial=True), FakeQueue()
    feeder = runner(function, queue, bisect=False)
    feeder._deliver([record(1), record(2), record(3, poison=True), record(4)])
    assert function.seen[0] == ["1", "2", "3", "4"]
    assert function.seen[1] == ["3", "4"]  # 1 and 2 were done; they are not delivered again
    assert function.seen[-1] == ["4"]  # after the retries, the poison record left for the queue and 4 went on
    assert feeder.delivered == 3 and feeder.dead_lettered == 1
    assert '"approximateInvokeCount": 3' in queue.bodies[0]
