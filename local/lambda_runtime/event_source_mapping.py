"""The local event source mapping: the table's stream delivered to the audit consumer as Lambda would.

It polls the emulated stream and gathers records into a batch until `BatchSize` is reached or
`MaximumBatchingWindowInSeconds` has passed since the first of them, then hands the function the batch
as real stream records (`stream_records.py`). It honours partial batch responses (`batchItemFailures`:
the records before the first failure are done, the rest are retried), bisects a batch whose
invocation fails, retries up to `MaximumRetryAttempts`, and then sends the failed batch's whole range
to the on-failure destination (the SQS dead-letter queue) and moves on. Records older than
`MaximumRecordAgeInSeconds` are not delivered: their range goes to the destination too. Its
`FilterCriteria` (event_filtering.py) are applied to each record as it is read, before batching, as
Lambda does: a record no filter matches is discarded, never delivered, never counted in a batch's
size nor as a failure. All with the settings of an `AWS::Lambda::EventSourceMapping` of the
templates: the audit consumer's (`cloudformation/audit.yaml`) and the waitlist's
(`cloudformation/booking.yaml`, which has no destination: Lambda then discards what it gives up on).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.account import ACCOUNT_ID, REGION
from local.lambda_runtime.event_filtering import EventFilter
from local.lambda_runtime.function_runtime import FunctionRuntime, Throttled
from local.lambda_runtime.stream_records import lambda_record, stream_event

Batch = list[dict[str, Any]]


@dataclass(frozen=True)
class MappingSettings:
    batch_size: int
    max_retries: int
    bisect: bool
    batching_window_seconds: float
    partial_batch_responses: bool
    max_record_age_seconds: int = -1  # -1: records never expire (Lambda's default)
    event_filter: EventFilter | None = None  # None: every record is delivered

    @classmethod
    def from_template(cls, template_name: str = "audit.yaml") -> MappingSettings:
        template = load_template(TEMPLATES / template_name)
        (mapping,) = resources_of_type(template, "AWS::Lambda::EventSourceMapping").values()
        properties = mapping["Properties"]
        return cls(
            batch_size=int(properties.get("BatchSize", 100)),
            max_retries=int(properties.get("MaximumRetryAttempts", -1)),
            bisect=bool(properties.get("BisectBatchOnFunctionError", False)),
            batching_window_seconds=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
            partial_batch_responses="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
            max_record_age_seconds=int(properties.get("MaximumRecordAgeInSeconds", -1)),
            event_filter=EventFilter.from_criteria(properties.get("FilterCriteria")),
        )


class EventSourceMapping:
    """Polls one table stream on a background thread and feeds one function."""

    def __init__(
        self,
        streams: Any,
        sqs: Any,
        stream_arn: str,
        runtime: FunctionRuntime,
        settings: MappingSettings,
        dead_letter_url: str | None,
        poll_seconds: float = 0.2,
        on_batch_age: Callable[[str, float], None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.streams, self.sqs, self.stream_arn = streams, sqs, stream_arn
        self.runtime, self.settings, self.dead_letter_url = runtime, settings, dead_letter_url
        self.poll_seconds = poll_seconds
        self._on_batch_age = on_batch_age  # (function name, IteratorAge ms) per delivered batch
        self._now = now  # the stack's clock: record ages and the destination's timestamps follow it
        self.delivered = 0
        self.dead_lettered = 0
        self.filtered_out = 0  # records no filter matched: discarded before batching
        self.invocations = 0  # of the function, retries included
        self._shard = ""
        self._caught_up = threading.Condition()
        self._caught_up_since = 0.0  # when the last poll that found nothing new started
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.ident is not None:  # started (a fixture may stop one its test never reached)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        self._shard = description["Shards"][0]["ShardId"]
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self._shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        pending: Batch = []
        window_ends = 0.0
        while not self._stopping.is_set():
            polled_at = time.monotonic()
            room = self.settings.batch_size - len(pending)
            page = self.streams.get_records(ShardIterator=iterator, Limit=room)
            iterator = page["NextShardIterator"]
            read = [dict(record) for record in page["Records"]]
            kept = self._kept(read)
            if kept and not pending:  # the window opens with the first record that will be delivered
                window_ends = polled_at + self.settings.batching_window_seconds
            pending += kept
            if pending and (len(pending) >= self.settings.batch_size or time.monotonic() >= window_ends):
                batch, pending = pending, []
                self._deliver(batch)
            elif not pending and read:
                continue  # all discarded by the filters: read on, there may be more behind them
            elif not pending:
                with self._caught_up:
                    self._caught_up_since = polled_at
                    self._caught_up.notify_all()
                self._stopping.wait(self.poll_seconds)
            else:  # gathering: wait for more records, at most until the window closes
                self._stopping.wait(max(0.0, min(self.poll_seconds, window_ends - time.monotonic())))

    def _kept(self, records: Batch) -> Batch:
        """The records the mapping's filters let through; the others are discarded (Lambda judges a
        record as the function would receive it, so `userIdentity` and epoch times are as delivered)."""
        event_filter = self.settings.event_filter
        if event_filter is None:
            return records
        kept = [record for record in records if event_filter.keeps(lambda_record(record, self.stream_arn))]
        self.filtered_out += len(records) - len(kept)
        return kept

    def wait_caught_up(self, timeout: float = 60.0) -> bool:
        """Wait until every change made before this call has been delivered (or dead-lettered).

        A write to the emulated table is in its stream when the write returns, so a poll that starts
        after this call and finds nothing new, with no batch still gathering, means everything before
        it went through.
        """
        asked_at = time.monotonic()
        with self._caught_up:
            return self._caught_up.wait_for(lambda: self._caught_up_since >= asked_at, timeout)

    def _deliver(self, records: Batch) -> None:
        """Deliver one batch with Lambda's retry, bisection and on-failure rules; never give up silently."""
        work: deque[tuple[Batch, int]] = deque([(records, 0)])
        while work and not self._stopping.is_set():
            batch, attempts = work.popleft()
            batch = self._without_expired(batch, attempts)
            if not batch:
                continue
            failed_from, whole_batch_failed = self._invoke(batch)
            if failed_from is None:
                self.delivered += len(batch)
                continue
            self.delivered += failed_from
            remaining = batch[failed_from:]
            if whole_batch_failed and self.settings.bisect and len(remaining) > 1:
                half = len(remaining) // 2  # splitting does not consume the retry quota (Lambda)
                work.extendleft([(remaining[half:], attempts), (remaining[:half], attempts)])
            elif attempts < self.settings.max_retries or self.settings.max_retries < 0:
                time.sleep(min(1.0, 0.05 * 2**attempts))
                work.appendleft((remaining, attempts + 1))
            else:
                # Retries exhausted: the failed batch's whole range goes to the destination, and the
                # mapping moves past it, as Lambda does.
                self._dead_letter(remaining, attempts + 1, "RetryAttemptsExhausted")

    def _without_expired(self, batch: Batch, attempts: int) -> Batch:
        """The batch less its records older than `MaximumRecordAgeInSeconds`, whose range goes to the
        destination instead (Lambda discards them before invoking, oldest first)."""
        limit = self.settings.max_record_age_seconds
        if limit < 0:
            return batch
        now = self._now()
        expired = 0
        while expired < len(batch) and (created := _created_at(batch[expired])) is not None and now - created > limit:
            expired += 1
        if expired:
            self._dead_letter(batch[:expired], attempts, "RecordAgeExceeded")
        return batch[expired:]

    def _invoke(self, batch: Batch) -> tuple[int | None, bool]:
        """(index of the first record to retry or None, whether the whole invocation failed)."""
        if self._on_batch_age is not None:
            # Lambda's IteratorAge: how old the batch's last record is when the function gets it.
            created = _created_at(batch[-1])
            if created is not None:
                self._on_batch_age(self.runtime.spec.name, max(0.0, (self._now() - created) * 1000))
        while True:
            try:
                invocation = self.runtime.invoke(stream_event(batch, self.stream_arn))
                self.invocations += 1
                break
            except Throttled:
                self._stopping.wait(0.2)  # a throttled poll is retried without counting as an attempt
                if self._stopping.is_set():
                    return 0, True
        if invocation.failed:
            return 0, True
        failures = (
            (invocation.payload or {}).get("batchItemFailures", []) if self.settings.partial_batch_responses else []
        )
        if not failures:
            return None, False
        sequences = [record["dynamodb"]["SequenceNumber"] for record in batch]
        reported = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(identifier not in sequences for identifier in reported):
            return 0, True  # a response Lambda cannot read is the whole batch failing
        return min(sequences.index(identifier) for identifier in reported), False

    def _dead_letter(self, batch: Batch, attempts: int, condition: str) -> None:
        """What Lambda's on-failure destination receives for a stream source: where, not what."""
        now = _iso(self._now())
        created = [_created_at(record) for record in batch]
        message: dict[str, Any] = {
            "version": "1.0",
            "timestamp": now,
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.runtime.spec.name}",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "DDBStreamBatchInfo": {
                "shardId": self._shard,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(created[0]) if created[0] is not None else None,
                "approximateArrivalOfLastRecord": _iso(created[-1]) if created[-1] is not None else None,
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        if condition == "RetryAttemptsExhausted":  # there were invocations, and the last one failed
            message["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        if self.dead_letter_url is not None:  # without a destination Lambda discards the range, as here
            self.sqs.send_message(QueueUrl=self.dead_letter_url, MessageBody=json.dumps(message))
        self.dead_lettered += len(batch)


def _created_at(record: dict[str, Any]) -> float | None:
    """When the change was made (the record's ApproximateCreationDateTime), as epoch seconds."""
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if created is None:
        return None
    return created.timestamp() if isinstance(created, datetime) else float(created)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
