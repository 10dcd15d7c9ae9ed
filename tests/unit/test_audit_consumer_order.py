"""The audit consumer keeps each entity's chain in stream order: after a failed record, the later records
of the same entity in that batch fail too, while other entities' records go on."""

from __future__ import annotations

from typing import Any

import pytest

from services.audit import handler
from services.audit.domain.chain import GENESIS, ArchivedEvent, link
from services.common.audit import AuditEvent
from services.common.dynamodb import to_item
from tests.conftest import FakeLambdaContext


class FlakyTrail:
    """A trail whose first append of one stream record fails (e.g. contention), then works."""

    def __init__(self, failing_once: str) -> None:
        self.failing_once: str | None = failing_once
        self.chains: dict[str, list[ArchivedEvent]] = {}

    def record(self, event: AuditEvent) -> tuple[ArchivedEvent, bool]:
        if event.sequence == self.failing_once:
            self.failing_once = None
            raise RuntimeError("contention")
        chain = self.chains.setdefault(event.entityId, [])
        for stored in chain:
            if stored.eventId == event.eventId:
                return stored, False
        chain.append(link(event, len(chain) + 1, chain[-1].hash if chain else GENESIS))
        return chain[-1], True


class Archive:
    def store(self, archived: ArchivedEvent) -> bool:
        return True


def change(booking: str, sequence: int, version: int) -> dict[str, Any]:
    """The stream record of a booking moving from one version to the next."""

    def image(v: int) -> dict[str, Any]:
        return to_item({"entityType": "Booking", "bookingId": booking, "status": "CONFIRMED", "version": v,
                        "start": f"2026-12-{v + 1:02d}T10:00:00Z", "actor": "lena", "requestId": f"r{sequence}",
                        "traceId": "1-5f84c7a1-0123456789abcdef01234567"})  # fmt: skip

    dynamodb = {
        "SequenceNumber": str(sequence),
        "ApproximateCreationDateTime": 1_795_600_000.0,
        "Keys": {},
        "OldImage": image(version - 1),
        "NewImage": image(version),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    return {"eventID": f"e{sequence}", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "dynamodb": dynamodb}


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> FlakyTrail:
    settings = {"STAGE": "unit", "TABLE_NAME": "t", "AUDIT_BUCKET_NAME": "b", "POWERTOOLS_SERVICE_NAME": "audit"}
    for name, value in {**settings, "POWERTOOLS_METRICS_NAMESPACE": "Appointments", "ALLOWED_ORIGINS": ""}.items():
        monkeypatch.setenv(name, value)
    trail = FlakyTrail(failing_once="101")
    monkeypatch.setattr(handler, "trail", lambda: trail)
    monkeypatch.setattr(handler, "archive", lambda: Archive())
    return trail


def test_after_a_failed_record_its_entitys_later_records_wait_and_the_chain_keeps_stream_order(
    consumer: FlakyTrail,
) -> None:
    batch = [change("bkg_a", 101, 2), change("bkg_a", 102, 3), change("bkg_b", 103, 2)]
    answer = handler.lambda_handler({"Records": batch}, FakeLambdaContext())
    # the failed record and the later one of the same booking are reported; the other booking's is not
    assert answer == {"batchItemFailures": [{"itemIdentifier": "101"}, {"itemIdentifier": "102"}]}
    assert "bkg_a" not in consumer.chains and len(consumer.chains["bkg_b"]) == 1
    # Lambda retries from the first failed record, in stream order: the chain follows it
    assert handler.lambda_handler({"Records": batch}, FakeLambdaContext()) == {"batchItemFailures": []}
    assert [e.sequence for e in consumer.chains["bkg_a"]] == ["101", "102"]
    assert [e.chainIndex for e in consumer.chains["bkg_a"]] == [1, 2]
    assert len(consumer.chains["bkg_b"]) == 1  # its redelivery found its link
