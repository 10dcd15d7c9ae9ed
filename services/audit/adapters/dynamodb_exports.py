"""DynamoDB's exports to S3 and imports from S3 (decision 0032): start, wait, list, read, restore.

The export's layout is AWS's ("DynamoDB table export output format"): under
`<prefix>/AWSDynamoDB/<export id>/`, `manifest-summary.json` (the export's ARN, time and item count),
`manifest-files.json` (a JSON line per data file: `itemCount`, `md5Checksum`, `dataFileS3Key`) and the
gzip DynamoDB JSON data files, an `{"Item": …}` a line.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from services.audit.domain.backups import DataFile, ExportState, Item, export_prefix, item_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


class BackupError(RuntimeError):
    """An export or import that failed, or did not finish in time."""


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


def state_of(description: dict[str, Any]) -> ExportState:
    failure = description.get("FailureCode")
    if failure and description.get("FailureMessage"):
        failure = f"{failure}: {description['FailureMessage']}"
    started = _moment(description.get("StartTime")) or datetime.now(UTC)
    return ExportState(
        table_arn=str(description["TableArn"]),
        arn=str(description["ExportArn"]),
        status=str(description["ExportStatus"]),
        started=started,
        export_time=_moment(description.get("ExportTime")),
        failure=failure,
    )


class TableExports:
    """Exports of the stage's tables to the backup bucket, and what DynamoDB says of them."""

    def __init__(self, client: DynamoDBClient, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def start(self, table_arn: str, token: str, at: datetime | None = None) -> ExportState:
        """An export of the table as it is now (or at `at`, a whole second of the recovery window);
        the same one again for a token used within 8 hours."""
        table_name = table_arn.rsplit("/", 1)[-1]
        request: dict[str, Any] = {
            "TableArn": table_arn,
            "S3Bucket": self.bucket,
            "S3Prefix": export_prefix(table_name),
            "S3SseAlgorithm": "AES256",
            "ExportFormat": "DYNAMODB_JSON",
            "ExportType": "FULL_EXPORT",
            "ClientToken": token,
        }
        if at is not None:
            request["ExportTime"] = at
        answer = self.client.export_table_to_point_in_time(**request)
        return state_of(dict(answer["ExportDescription"]))

    def created(self, table_arn: str) -> datetime:
        """When the table was made: a table never exported is unprotected since then."""
        table = self.client.describe_table(TableName=table_arn.rsplit("/", 1)[-1])["Table"]
        return table["CreationDateTime"].astimezone(UTC)

    def describe(self, export_arn: str) -> dict[str, Any]:
        return dict(self.client.describe_export(ExportArn=export_arn)["ExportDescription"])

    def recent(self, table_arn: str, newest: int = 4) -> list[ExportState]:
        """The table's newest exports, described. ListExports answers no times, so they are ordered by
        their ids, which begin with the start's milliseconds (`01234567890123-a1b2c3d4`)."""
        arns: list[str] = []
        request: dict[str, Any] = {"TableArn": table_arn, "MaxResults": 25}
        while True:
            page = self.client.list_exports(**request)
            arns += [str(summary["ExportArn"]) for summary in page.get("ExportSummaries", [])]
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
        arns.sort(key=lambda arn: arn.rsplit("/", 1)[-1], reverse=True)
        return [state_of(self.describe(arn)) for arn in arns[:newest]]

    def wait(
        self, export_arn: str, timeout: float, poll: float = 10.0, sleep: Callable[[float], None] = time.sleep
    ) -> dict[str, Any]:
        """DescribeExport until it is COMPLETED; BackupError if it failed or took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            description = self.describe(export_arn)
            if description["ExportStatus"] == "COMPLETED":
                return description
            if description["ExportStatus"] == "FAILED":
                raise BackupError(f"export {export_arn} failed: {state_of(description).failure}")
            if time.monotonic() > deadline:
                raise BackupError(f"export {export_arn} is still {description['ExportStatus']} after {timeout:.0f} s")
            sleep(poll)


class ExportFiles:
    """An export's files as S3 holds them now: its manifests and its data, checked against each other."""

    def __init__(self, s3: S3Client, bucket: str, manifest_key: str) -> None:
        self.s3, self.bucket, self.manifest_key = s3, bucket, manifest_key

    @property
    def root(self) -> str:
        return self.manifest_key.rsplit("/", 1)[0]

    @property
    def data_prefix(self) -> str:
        return f"{self.root}/data/"

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = json.loads(self._read(self.manifest_key))
        return summary

    def files(self) -> Iterator[DataFile]:
        listed = self._read(self.summary()["manifestFilesS3Key"]).decode()
        for line in listed.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            body = self._read(str(entry["dataFileS3Key"]))
            actual = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
            items: list[Item] = []
            unreadable = None
            try:
                for number, text in enumerate(gzip.decompress(body).decode().splitlines(), start=1):
                    if text.strip():
                        try:
                            items.append(dict(json.loads(text)["Item"]))
                        except (ValueError, KeyError, TypeError):
                            unreadable = f"line {number} is not an item"
            except (OSError, EOFError, UnicodeDecodeError):
                unreadable = "not gzip DynamoDB JSON"
            yield DataFile(
                str(entry["dataFileS3Key"]),
                int(entry["itemCount"]),
                str(entry["md5Checksum"]),
                actual,
                tuple(items),
                unreadable,
            )

    def _read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


class Restores:
    """Tables made from an export with ImportTable (or from point-in-time recovery), read whole, and
    dropped after the drill."""

    def __init__(self, client: DynamoDBClient) -> None:
        self.client = client

    def start(self, bucket: str, data_prefix: str, source_table: str, name: str) -> str:
        """A new table `name` with the source's keys and indexes, from the export's data files."""
        source = self.client.describe_table(TableName=source_table)["Table"]
        creation: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": source["AttributeDefinitions"],
            "KeySchema": source["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"Enabled": True},
        }
        indexes = [
            {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"], "Projection": index["Projection"]}
            for index in source.get("GlobalSecondaryIndexes", [])
        ]
        if indexes:
            creation["GlobalSecondaryIndexes"] = indexes
        answer = self.client.import_table(
            S3BucketSource={"S3Bucket": bucket, "S3KeyPrefix": data_prefix},
            InputFormat="DYNAMODB_JSON",
            InputCompressionType="GZIP",
            TableCreationParameters=creation,  # type: ignore[arg-type]
        )
        return str(answer["ImportTableDescription"]["ImportArn"])

    def restorable(self, source_table: str) -> tuple[datetime, datetime] | None:
        """The earliest and latest moments point-in-time recovery can restore the table to (None: it
        is off). The latest runs a few minutes behind now on AWS."""
        backups = self.client.describe_continuous_backups(TableName=source_table)["ContinuousBackupsDescription"]
        recovery = backups["PointInTimeRecoveryDescription"]
        earliest, latest = (
            _moment(recovery.get("EarliestRestorableDateTime")),
            _moment(recovery.get("LatestRestorableDateTime")),
        )
        if recovery.get("PointInTimeRecoveryStatus") != "ENABLED" or earliest is None or latest is None:
            return None
        return earliest, latest

    def restore_to(self, source_table: str, name: str, at: datetime, timeout: float, poll: float = 10.0) -> None:
        """A new table `name`: the source as it was at `at`, by point-in-time recovery. DynamoDB can
        restore up to its latest restorable time, a few minutes behind now: wait for it to pass `at`."""
        deadline = time.monotonic() + timeout
        while True:
            backups = self.client.describe_continuous_backups(TableName=source_table)["ContinuousBackupsDescription"]
            latest = backups["PointInTimeRecoveryDescription"].get("LatestRestorableDateTime")
            if latest is not None and _moment(latest) is not None and _moment(latest) >= at:  # type: ignore[operator]
                break
            if time.monotonic() > deadline:
                raise BackupError(f"{source_table} cannot be restored to {at.isoformat()} yet (latest: {latest})")
            time.sleep(poll)
        self.client.restore_table_to_point_in_time(
            SourceTableName=source_table,
            TargetTableName=name,
            RestoreDateTime=at,
            BillingModeOverride="PAY_PER_REQUEST",
        )

    def wait_active(self, table: str, timeout: float, poll: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.client.describe_table(TableName=table)["Table"]["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise BackupError(f"{table} is not ACTIVE after {timeout:.0f} s")
            time.sleep(poll)

    def wait(
        self, import_arn: str, timeout: float, poll: float = 10.0, sleep: Callable[[float], None] = time.sleep
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            description = dict(self.client.describe_import(ImportArn=import_arn)["ImportTableDescription"])
            status = description["ImportStatus"]
            if status == "COMPLETED":
                return description
            if status in {"FAILED", "CANCELLED"}:
                reason = f"{description.get('FailureCode')}: {description.get('FailureMessage')}"
                raise BackupError(f"import {import_arn} {status.lower()}: {reason}")
            if time.monotonic() > deadline:
                raise BackupError(f"import {import_arn} is still {status} after {timeout:.0f} s")
            sleep(poll)

    def items(self, table: str) -> dict[str, Item]:
        """Every item, by key: a strongly consistent Scan (the drill's one full read of each table)."""
        found: dict[str, Item] = {}
        request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**request)
            for item in page["Items"]:
                found[item_key(item)] = dict(item)
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def drop(self, table: str) -> None:
        """Wait for the table to be made (DynamoDB deletes none being made), then delete it; one already
        gone (a failed import leaves none) is no error."""
        try:
            self.wait_active(table, timeout=3600, poll=5)
            self.client.delete_table(TableName=table)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
