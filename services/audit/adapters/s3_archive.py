"""The audit archive in S3: one gzip NDJSON object per archived event, written with a conditional put.

One object per event (not per batch) because its key can then come from the stream record itself: a
redelivered record puts to the same key, S3 refuses the second write (`If-None-Match: *`), and the
archive holds every event exactly once however Lambda splits and retries its batches
(docs/decisions/0008-audit-archive.md).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from msgspec import Struct
from pydantic import ValidationError

from services.audit.domain.chain import ArchivedEvent, ArchiveObject, object_key
from services.common.dynamodb import error_code
from services.common.tracing import traced

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "audit/"


class ArchiveConflictError(Exception):
    """The key of an event already holds something else: never overwritten, always reported."""


def encode(event: ArchivedEvent) -> bytes:
    # mtime=0: the same event always makes the same bytes.
    return gzip.compress(event.model_dump_json().encode() + b"\n", mtime=0)


def decode(body: bytes) -> list[str]:
    return [line for line in gzip.decompress(body).decode().splitlines() if line.strip()]


def _same_event(lines: list[str], event: ArchivedEvent) -> bool:
    """Whether an archived object holds this event: compared as events, not bytes, so an object
    written before a later optional field existed (it lacks `"traceFromClient": null`) still matches."""
    try:
        return [ArchivedEvent.model_validate_json(line) for line in lines] == [event]
    except ValidationError:
        return False


class S3Archive(Struct):
    client: S3Client
    bucket: str

    @traced("audit.archive.store")
    def store(self, event: ArchivedEvent) -> bool:
        """Archive the event; False when an earlier delivery already did (the same record is there)."""
        key = object_key(event)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=encode(event),
                IfNoneMatch="*",
                ContentType="application/x-ndjson",
                ContentEncoding="gzip",
                ChecksumAlgorithm="SHA256",  # object lock requires a checksum on every put
            )
        except ClientError as error:
            if error_code(error) not in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise
            existing = decode(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            if not _same_event(existing, event):
                conflict = f"s3://{self.bucket}/{key} holds something else than event {event.eventId}"
                raise ArchiveConflictError(conflict) from error
            return False
        return True

    def objects(self) -> Iterator[ArchiveObject]:
        """Every archive key as it reads now, with how many versions it has had: what the verifier checks."""
        versions: dict[str, int] = {}
        deleted: set[str] = set()
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=PREFIX):
            for version in page.get("Versions", []):
                versions[version["Key"]] = versions.get(version["Key"], 0) + 1
            for marker in page.get("DeleteMarkers", []):
                if marker.get("IsLatest"):
                    deleted.add(marker["Key"])
        for key in sorted(versions.keys() | deleted):
            if key in deleted:
                yield ArchiveObject(key, [], versions.get(key, 0), deleted=True)
                continue
            yield ArchiveObject(key, self._lines(key), versions[key])

    def _lines(self, key: str) -> list[str]:
        body: Any = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            return decode(body)
        except (OSError, EOFError, UnicodeDecodeError):
            return [repr(body[:80])]  # not gzip NDJSON: verify reports it as an unreadable line
