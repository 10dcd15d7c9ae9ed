"""Backups (decision 0032), without AWS: when the hourly run exports, how old the backup is, what the
drill calls a problem; and the emulator's exports and imports, as AWS documents them, refusals
included."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.emulator import table_exports
from services.audit.domain.backups import (
    MAX_AGE,
    DataFile,
    ExportState,
    client_token,
    compare,
    counts_by_type,
    due_today,
    file_problems,
    freshness,
)

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
TABLE, AUDIT = "arn:aws:dynamodb:us-east-1:1:table/t", "arn:aws:dynamodb:us-east-1:1:table/t-audit"


def export(table: str, status: str, started: datetime, at: datetime | None = None) -> ExportState:
    return ExportState(table, f"{table}/export/{int(started.timestamp() * 1000):014d}-00", status, started, at)


def test_the_first_run_of_each_day_exports_and_a_failure_is_tried_again_in_the_next_six_hours() -> None:
    yesterday = NOW - timedelta(days=1)
    assert due_today([], NOW.date())
    assert due_today([export(TABLE, "COMPLETED", yesterday, yesterday)], NOW.date())
    assert not due_today([export(TABLE, "IN_PROGRESS", NOW - timedelta(hours=1))], NOW.date())
    assert not due_today([export(TABLE, "COMPLETED", NOW - timedelta(hours=9), NOW)], NOW.date())
    assert due_today([export(TABLE, "FAILED", NOW - timedelta(hours=2))], NOW.date())
    # the token: the same within six hours of a day (a second run, a retry), another after
    day = date(2026, 12, 1)
    assert client_token("t", day, 0) == client_token("t", day, 5) != client_token("t", day, 6)
    tokens = {
        client_token(table, d, hour)
        for table in ("t", "t-audit")
        for d in (day, date(2026, 12, 2))
        for hour in (0, 6, 12, 18)
    }
    assert len(tokens) == 16 and all(len(token) == 32 for token in tokens)


def test_the_backup_is_as_old_as_its_stalest_table_and_a_table_never_exported_counts_from_its_creation() -> None:
    created = {TABLE: NOW - timedelta(days=90), AUDIT: NOW - timedelta(days=90)}
    exports = [
        export(TABLE, "FAILED", NOW - timedelta(hours=5)),  # then completed: not failing
        export(TABLE, "COMPLETED", NOW - timedelta(hours=3), NOW - timedelta(hours=3)),
        export(AUDIT, "COMPLETED", NOW - timedelta(hours=27), NOW - timedelta(hours=27)),
        export(AUDIT, "FAILED", NOW - timedelta(hours=6)),  # today's, the newest: failing every hour until one works
    ]
    measured = freshness(created, exports, NOW)
    assert measured.age == timedelta(hours=27) and measured.stalest_table == AUDIT and measured.overdue
    assert [e.arn for e in measured.failed] == [exports[3].arn]
    fresh = freshness(created, [*exports, export(AUDIT, "COMPLETED", NOW, NOW - timedelta(hours=1))], NOW)
    assert fresh.age == timedelta(hours=3) and not fresh.overdue and fresh.age < MAX_AGE and fresh.failed == ()
    new = freshness({TABLE: NOW - timedelta(minutes=40), AUDIT: NOW - timedelta(minutes=40)}, [], NOW)
    assert new.age == timedelta(minutes=40) and not new.overdue  # a new stage is not yet overdue


def item(key: str, **fields: Any) -> dict[str, Any]:
    values = {name: {"S": str(value)} for name, value in fields.items()}
    return {"PK": {"S": key}, "SK": {"S": "X"}, "entityType": {"S": "Booking"}, **values}


def test_the_restore_is_compared_with_the_table_at_the_same_moment_and_nothing_is_excused() -> None:
    truth = {
        "A/X": item("A", status="CONFIRMED"),
        "B/X": item("B", status="CONFIRMED"),
        "C/X": item("C", status="CONFIRMED"),
        "F/X": item("F", count="2"),
    }
    restored = {
        "A/X": truth["A/X"],
        "B/X": item("B", status="CANCELLED"),  # altered in the export
        "F/X": {**item("F", count="2"), "extra": {"S": "x"}},  # an attribute added
        "G/X": item("G", status="CONFIRMED"),  # an item the table never had
    }  # C: lost from the export
    compared = compare(truth, restored)
    assert compared.equal == 1
    assert compared.altered == ["B/X (status)", "F/X (extra)"]
    assert (compared.missing, compared.extra) == (["C/X"], ["G/X"])
    assert compared.problems == [
        "altered: B/X (status)",
        "altered: F/X (extra)",
        "missing from the restore: C/X",
        "not in the table at the export's time: G/X",
    ]
    assert compare(truth, dict(truth)).problems == [] and counts_by_type(restored.values()) == {"Booking": 4}


def test_an_export_is_checked_against_its_own_manifest() -> None:
    good = DataFile("d/1.json.gz", 2, "abc", "abc", ({}, {}))
    changed = DataFile("d/2.json.gz", 2, "abc", "xyz", ({},))
    unreadable = DataFile("d/3.json.gz", 1, "abc", "abc", (), "not gzip DynamoDB JSON")
    assert file_problems([good], 2) == []
    assert file_problems([good, changed, unreadable], 5) == [
        "export file d/2.json.gz: its MD5 is not the manifest's (changed after the export)",
        "export file d/2.json.gz: 1 items, the manifest lists 2",
        "export file d/3.json.gz: not gzip DynamoDB JSON",
        "export: 3 items in its files, its summary counts 5",
    ]


# The emulator's exports and imports (local/emulator/table_exports.py), in this process -----------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    for name in (
        "export_table_to_point_in_time",
        "describe_export",
        "list_exports",
        "import_table",
        "describe_import",
        "restore_table_to_point_in_time",
        "describe_continuous_backups",
    ):
        monkeypatch.setattr(table_exports.DynamoHandler, name, getattr(table_exports, name))
    monkeypatch.setattr(table_exports.DynamoHandler, "list_imports", table_exports.list_imports, raising=False)
    monkeypatch.setattr(table_exports, "REGISTRY", table_exports.Registry())
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        dynamodb.create_table(
            TableName="src",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(600):
            dynamodb.put_item(
                TableName="src",
                Item={"PK": {"S": f"K{n}"}, "SK": {"S": "S"}, "n": {"N": str(n)}, "b": {"B": bytes([n % 256])}},
            )
        s3.create_bucket(Bucket="backups", ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(
            Bucket="backups",
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 35}},
            },
        )
        yield dynamodb, s3, dynamodb.describe_table(TableName="src")["Table"]["TableArn"]


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_an_export_needs_point_in_time_recovery_and_a_client_token_means_one_export(aws: tuple[Any, Any, str]) -> None:
    dynamodb, _, arn = aws
    with pytest.raises(ClientError) as refused:
        dynamodb.export_table_to_point_in_time(TableArn=arn, S3Bucket="backups")
    assert code(refused) == "PointInTimeRecoveryUnavailableException"
    dynamodb.update_continuous_backups(
        TableName="src", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    first = dynamodb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket="backups", S3Prefix="exports/src", ClientToken="t"
    )
    assert first["ExportDescription"]["ExportStatus"] == "IN_PROGRESS"
    export_arn = first["ExportDescription"]["ExportArn"]
    assert re.fullmatch(re.escape(f"{arn}/export/") + r"\d{14}-[0-9a-f]{8}", export_arn)  # 01234567890123-a1b2c3d4
    again = dynamodb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket="backups", S3Prefix="exports/src", ClientToken="t"
    )
    assert again["ExportDescription"]["ExportArn"] == export_arn
    with pytest.raises(ClientError) as conflict:
        dynamodb.export_table_to_point_in_time(TableArn=arn, S3Bucket="backups", S3Prefix="elsewhere", ClientToken="t")
    assert code(conflict) == "ExportConflictException"
    with pytest.raises(ClientError) as future:
        dynamodb.export_table_to_point_in_time(
            TableArn=arn, S3Bucket="backups", ExportTime=datetime.now(UTC) + timedelta(hours=1)
        )
    assert code(future) == "InvalidExportTimeException"
    with pytest.raises(ClientError) as past:  # the emulator keeps no history: refused, said so
        dynamodb.export_table_to_point_in_time(
            TableArn=arn, S3Bucket="backups", ExportTime=datetime.now(UTC) - timedelta(hours=1)
        )
    assert code(past) == "ValidationException" and "not emulated" in str(past.value)
    nowhere = dynamodb.export_table_to_point_in_time(TableArn=arn, S3Bucket="no-such-bucket")["ExportDescription"]
    failed = dynamodb.describe_export(ExportArn=nowhere["ExportArn"])["ExportDescription"]
    assert (failed["ExportStatus"], failed["FailureCode"]) == ("FAILED", "S3NoSuchBucket")
    listed = dynamodb.list_exports(TableArn=arn, MaxResults=1)
    assert len(listed["ExportSummaries"]) == 1 and listed["NextToken"]


def test_an_export_is_written_as_aws_documents_it_and_imports_into_a_new_table(aws: tuple[Any, Any, str]) -> None:
    dynamodb, s3, arn = aws
    dynamodb.update_continuous_backups(
        TableName="src", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    started = dynamodb.export_table_to_point_in_time(TableArn=arn, S3Bucket="backups", S3Prefix="exports/src")
    done = dynamodb.describe_export(ExportArn=started["ExportDescription"]["ExportArn"])["ExportDescription"]
    assert done["ExportStatus"] == "COMPLETED" and done["ItemCount"] == 600
    root = done["ExportManifest"].rsplit("/", 1)[0]
    assert root == f"exports/src/AWSDynamoDB/{done['ExportArn'].rsplit('/', 1)[1]}"
    summary_body = s3.get_object(Bucket="backups", Key=done["ExportManifest"])["Body"].read()
    summary = json.loads(summary_body)
    md5 = s3.get_object(Bucket="backups", Key=f"{root}/manifest-summary.checksum")["Body"].read().decode()
    assert md5 == base64.b64encode(hashlib.md5(summary_body, usedforsecurity=False).digest()).decode()
    assert (summary["itemCount"], summary["exportArn"], summary["outputFormat"]) == (
        600,
        done["ExportArn"],
        "DYNAMODB_JSON",
    )
    files = [
        json.loads(line)
        for line in s3.get_object(Bucket="backups", Key=summary["manifestFilesS3Key"])["Body"].read().splitlines()
    ]
    assert len(files) == 3 and sum(entry["itemCount"] for entry in files) == 600
    for entry in files:
        body = s3.get_object(Bucket="backups", Key=entry["dataFileS3Key"])["Body"].read()
        assert entry["md5Checksum"] == base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        lines = gzip.decompress(body).decode().splitlines()
        assert len(lines) == entry["itemCount"] and all(set(json.loads(line)) == {"Item"} for line in lines)
    head = s3.head_object(Bucket="backups", Key=done["ExportManifest"])
    assert head["ObjectLockMode"] == "GOVERNANCE"  # the bucket's default retention, as for any writer
    # a bad line among them is an error of the import, not its failure
    s3.put_object(
        Bucket="backups",
        Key=f"{root}/data/zz-bad.json.gz",
        Body=gzip.compress(b'{"Item": 1}\n'),
        ChecksumAlgorithm="SHA256",
    )
    creation = {
        "TableName": "restored",
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    source = {"S3Bucket": "backups", "S3KeyPrefix": f"{root}/data/"}
    imported = dynamodb.import_table(
        S3BucketSource=source,
        InputFormat="DYNAMODB_JSON",
        InputCompressionType="GZIP",
        TableCreationParameters=creation,
    )
    assert imported["ImportTableDescription"]["ImportStatus"] == "IN_PROGRESS"
    result = dynamodb.describe_import(ImportArn=imported["ImportTableDescription"]["ImportArn"])[
        "ImportTableDescription"
    ]
    assert (result["ImportStatus"], result["ImportedItemCount"], result["ErrorCount"]) == ("COMPLETED", 600, 1)
    assert dynamodb.get_item(TableName="restored", Key={"PK": {"S": "K7"}, "SK": {"S": "S"}})["Item"]["b"] == {
        "B": bytes([7])
    }
    assert "LatestStreamArn" not in dynamodb.describe_table(TableName="restored")["Table"]  # set afterwards, as on AWS
    with pytest.raises(ClientError) as exists:
        dynamodb.import_table(
            S3BucketSource=source,
            InputFormat="DYNAMODB_JSON",
            InputCompressionType="GZIP",
            TableCreationParameters=creation,
        )
    assert code(exists) == "ResourceInUseException"
    assert [i["ImportStatus"] for i in dynamodb.list_imports()["ImportSummaryList"]] == ["COMPLETED"]


def test_a_point_in_time_restore_needs_recovery_on_and_takes_no_time_the_emulator_cannot_give(
    aws: tuple[Any, Any, str],
) -> None:
    dynamodb, _, _ = aws
    now = datetime.now(UTC)
    with pytest.raises(ClientError) as refused:
        dynamodb.restore_table_to_point_in_time(SourceTableName="src", TargetTableName="copy", RestoreDateTime=now)
    assert code(refused) == "PointInTimeRecoveryUnavailableException"
    dynamodb.update_continuous_backups(
        TableName="src", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    recovery = dynamodb.describe_continuous_backups(TableName="src")["ContinuousBackupsDescription"]
    latest = recovery["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    assert abs((latest - now).total_seconds()) < 5  # up to now (AWS lags about five minutes)
    with pytest.raises(ClientError) as future:
        dynamodb.restore_table_to_point_in_time(
            SourceTableName="src", TargetTableName="copy", RestoreDateTime=now + timedelta(hours=1)
        )
    assert code(future) == "InvalidRestoreTimeException"
    with pytest.raises(ClientError) as past:
        dynamodb.restore_table_to_point_in_time(
            SourceTableName="src", TargetTableName="copy", RestoreDateTime=now - timedelta(hours=1)
        )
    assert code(past) == "ValidationException" and "not emulated" in str(past.value)
    dynamodb.restore_table_to_point_in_time(SourceTableName="src", TargetTableName="copy", RestoreDateTime=now)
    assert dynamodb.scan(TableName="copy", Select="COUNT")["Count"] == 600
