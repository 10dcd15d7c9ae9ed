"""The archive's create-only put: a redelivery finds its own event there; anything else is a conflict."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from services.audit.adapters.s3_archive import ArchiveConflictError, S3Archive, encode
from services.audit.domain.chain import GENESIS, link
from services.common.audit import AuditEvent, Change

EVENT = link(
    AuditEvent(
        eventId="e1", sequence="7", entityType="Booking", entityId="bkg_1", action="BOOKING_CREATED",
        at="2026-12-01T10:00:00Z", changes={"status": Change(after="CONFIRMED")},
    ),
    1,
    GENESIS,
)  # fmt: skip


class TakenKey:
    """An S3 client whose key already holds `body`: the put is refused as S3 refuses `If-None-Match: *`."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def put_object(self, **_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions"}}, "PutObject"
        )

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.body)}


def archive(body: bytes) -> S3Archive:
    return S3Archive(TakenKey(body), "bucket")  # type: ignore[arg-type]


def test_a_redelivery_finds_its_own_event_even_in_an_object_written_before_a_later_optional_field() -> None:
    assert archive(encode(EVENT)).store(EVENT) is False
    older = json.loads(EVENT.model_dump_json())
    older.pop("traceFromClient")  # as objects archived before the field existed read
    assert archive(gzip.compress(json.dumps(older).encode() + b"\n")).store(EVENT) is False


@pytest.mark.parametrize(
    "body",
    [
        encode(EVENT.model_copy(update={"actor": "someone-else"})),  # another event under its key
        gzip.compress(b"not json\n"),
        gzip.compress(EVENT.model_dump_json().encode() + b"\n" + EVENT.model_dump_json().encode() + b"\n"),
    ],
)
def test_anything_else_under_its_key_is_a_conflict_never_overwritten(body: bytes) -> None:
    with pytest.raises(ArchiveConflictError):
        archive(body).store(EVENT)
