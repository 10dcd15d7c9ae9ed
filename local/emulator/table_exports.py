"""DynamoDB's exports to S3 and imports from S3, as AWS makes them, in place of moto's.

moto 5.2 exports a table as one gzip file with no manifest, under an ARN of the wrong shape, from a
thread of its own (moto is not thread-safe), and imports whatever lies under a prefix. The backups
(decision 0032) read what AWS writes, so this writes what AWS documents ("DynamoDB table export
output format", "Import from S3"):

- `ExportTableToPointInTime` answers `IN_PROGRESS` with an ARN
  `…:table/<name>/export/<13-digit ms>-<8 hex>`; `DescribeExport` then answers `COMPLETED` (the
  work is done at once, inside the emulator's lock, on the table as it is). Under
  `<S3Prefix>/AWSDynamoDB/<ExportId>/` it writes `_started`, the data files
  `data/<id>.json.gz` (DynamoDB JSON, one `{"Item": …}` a line, gzip), `manifest-files.json` (a
  line per data file: `itemCount`, `md5Checksum`, `etag`, `dataFileS3Key`), `manifest-summary.json`
  (`exportArn`, `exportTime`, `itemCount`, `manifestFilesS3Key`, …) and their `.checksum` files. The
  objects get the bucket's default object lock retention and the encryption asked for, as S3 gives
  any writer's.
- AWS's refusals: a table without point-in-time recovery (`PointInTimeRecoveryUnavailableException`),
  a `ClientToken` used again within 8 hours with other parameters (`ExportConflictException`), an
  `ExportTime` in the future (`InvalidExportTimeException`). A bucket that does not exist fails the
  export (`FailureCode` `S3NoSuchBucket`), not the request.
- Not emulated, and refused so: an `ExportTime` more than a minute in the past (the emulator keeps
  no history to export from), `ION`, and incremental exports.
- `ImportTable` creates the table (`ResourceInUseException` if it exists) from every object under
  `S3KeyPrefix`, `GZIP` or uncompressed DynamoDB JSON; a line that is not an item is an error
  (`ErrorCount`), not a failure of the import; a key given twice keeps the last. The new table has
  no stream, no TTL and no point-in-time recovery: as on AWS, those are set afterwards.
  `DescribeImport` and `ListImports` as AWS answers them.
- `RestoreTableToPointInTime` (moto copies the table as it is, whatever it is asked): refused without
  point-in-time recovery on the source (`PointInTimeRecoveryUnavailableException`), for a time in the
  future (`InvalidRestoreTimeException`), and, not emulated, for a time more than a minute ago; the
  continuous backups answer `LatestRestorableDateTime` now, where AWS's lags about five minutes (a
  caller that restores a moment waits for it, as the drill does).
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, MockValidationException, ResourceInUseException
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.dynamodb.responses import DynamoHandler

ITEMS_PER_FILE = 250  # AWS splits an export into many files; a few here, so each file's count matters
TOKEN_HOURS = 8


class ExportConflictException(JsonRESTError):
    def __init__(self) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "ExportConflictException",
            "The ClientToken was used with other parameters within 8 hours.",
        )


class InvalidExportTimeException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "InvalidExportTimeException", message)


class ExportNotFoundException(JsonRESTError):
    def __init__(self, arn: str) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "ExportNotFoundException", f"Export not found: {arn}")


class ImportNotFoundException(JsonRESTError):
    def __init__(self, arn: str) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "ImportNotFoundException", f"Import not found: {arn}")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(value: Any) -> float:
    """A timestamp as moto hands it over (parsed to a datetime, or as sent: epoch seconds)."""
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _table_id(table_arn: str) -> str:
    """A table's id (a UUID on AWS), stable for its ARN: moto keeps none."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, table_arn))


def _operation_id(now: float) -> str:
    """`01234567890123-a1b2c3d4`: 14 digits (the start's milliseconds, as the documentation's
    examples read), then 8 hex."""
    return f"{int(now * 1000):014d}-{secrets.token_hex(4)}"


@dataclass
class Export:
    description: dict[str, Any]  # as DescribeExport answers it (the start answered it IN_PROGRESS)
    token_params: str  # the parameters its ClientToken was first used with


@dataclass
class Import:
    description: dict[str, Any]  # as DescribeImport answers it


@dataclass
class Registry:
    exports: dict[str, Export] = field(default_factory=dict)
    tokens: dict[str, tuple[float, str]] = field(default_factory=dict)  # ClientToken → (when, export ARN)
    imports: dict[str, Import] = field(default_factory=dict)


REGISTRY = Registry()


def _s3_backend(account_id: str, partition: str = "aws") -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account_id][partition]


def _put(s3: Any, bucket: Any, key: str, body: bytes, encryption: str | None, kms_key: str | None) -> str:
    """One object, as S3 stores any writer's: the bucket's default retention applies. Answers its ETag."""
    lock: dict[str, Any] = {}
    if bucket.has_default_lock:
        lock = {"lock_mode": bucket.default_lock_mode, "lock_until": bucket.default_retention()}
    stored = s3.put_object(bucket.name, key, body, encryption=encryption, kms_key_id=kms_key, **lock)
    return str(stored.etag).strip('"')


def _md5_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def export_table_to_point_in_time(self: DynamoHandler) -> Any:
    body = self.body
    backend = self.dynamodb_backend
    now = time.time()
    table_arn = str(body["TableArn"])
    table = next((t for t in backend.tables.values() if t.table_arn == table_arn), None)
    if table is None:
        raise JsonRESTError(ERROR_TYPE_PREFIX + "TableNotFoundException", f"Table not found: {table_arn}")
    if body.get("ExportFormat", "DYNAMODB_JSON") != "DYNAMODB_JSON":
        raise MockValidationException("The local emulator exports DYNAMODB_JSON only (ION is not emulated).")
    if body.get("ExportType", "FULL_EXPORT") != "FULL_EXPORT":
        raise MockValidationException("The local emulator makes full exports only (incremental is not emulated).")
    export_time = _epoch(body.get("ExportTime", now))
    if export_time > now + 1:
        raise InvalidExportTimeException("The export time is in the future.")
    if export_time < now - 60:
        raise MockValidationException(
            "The local emulator exports the table as it is now: an ExportTime in the past is not emulated."
        )
    pitr = table.continuous_backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
    if pitr != "ENABLED":
        raise JsonRESTError(
            ERROR_TYPE_PREFIX + "PointInTimeRecoveryUnavailableException",
            f"Point in time recovery is not enabled for table '{table.name}'",
        )
    params = json.dumps({k: v for k, v in body.items() if k not in {"ClientToken", "ExportTime"}}, sort_keys=True)
    token = body.get("ClientToken")
    if token:
        for old_token, (when, _arn) in list(REGISTRY.tokens.items()):
            if now - when > TOKEN_HOURS * 3600:
                del REGISTRY.tokens[old_token]
        if token in REGISTRY.tokens:
            known = REGISTRY.exports[REGISTRY.tokens[token][1]]
            if known.token_params != params:
                raise ExportConflictException()
            return ActionResult({"ExportDescription": known.description})
    export_id = _operation_id(now)
    arn = f"{table.table_arn}/export/{export_id}"
    prefix = str(body.get("S3Prefix") or "").strip("/")
    root = f"{prefix}/AWSDynamoDB/{export_id}" if prefix else f"AWSDynamoDB/{export_id}"
    description: dict[str, Any] = {
        "ExportArn": arn,
        "ExportStatus": "IN_PROGRESS",
        "StartTime": now,
        "TableArn": table.table_arn,
        "TableId": _table_id(table.table_arn),
        "ExportTime": export_time,
        "S3Bucket": body["S3Bucket"],
        "S3BucketOwner": body.get("S3BucketOwner", backend.account_id),
        "S3SseAlgorithm": body.get("S3SseAlgorithm", "AES256"),
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
        **({"S3Prefix": prefix} if prefix else {}),
        **({"S3SseKmsKeyId": body["S3SseKmsKeyId"]} if body.get("S3SseKmsKeyId") else {}),
        **({"ClientToken": token} if token else {}),
    }
    start = dict(description)
    s3 = _s3_backend(backend.account_id)
    bucket = s3.buckets.get(str(body["S3Bucket"]))
    if bucket is None:
        description |= {
            "ExportStatus": "FAILED",
            "EndTime": now,
            "FailureCode": "S3NoSuchBucket",
            "FailureMessage": "The specified bucket does not exist",
        }
    else:
        description |= _write_export(s3, bucket, table, description, root, now)
    REGISTRY.exports[arn] = Export(description, params)
    if token:
        REGISTRY.tokens[token] = (now, arn)
    return ActionResult({"ExportDescription": start})


def _write_export(
    s3: Any, bucket: Any, table: Any, description: dict[str, Any], root: str, now: float
) -> dict[str, Any]:
    encryption = "aws:kms" if description["S3SseAlgorithm"] == "KMS" else "AES256"
    kms_key = description.get("S3SseKmsKeyId")
    _put(s3, bucket, f"{root}/_started", b"", encryption, kms_key)
    lines = [dynamo_json_dump(item.to_json(root_attr_name="Item")) for item in table.all_items()]
    files, billed = [], 0
    for first in range(0, len(lines), ITEMS_PER_FILE):
        chunk = lines[first : first + ITEMS_PER_FILE]
        raw = ("\n".join(chunk) + "\n").encode()
        billed += len(raw)
        body = gzip.compress(raw, mtime=0)
        key = f"{root}/data/{secrets.token_hex(13)}.json.gz"
        etag = _put(s3, bucket, key, body, encryption, kms_key)
        files.append({"itemCount": len(chunk), "md5Checksum": _md5_b64(body), "etag": etag, "dataFileS3Key": key})
    manifest_files = "".join(json.dumps(entry) + "\n" for entry in files).encode()
    _put(s3, bucket, f"{root}/manifest-files.json", manifest_files, encryption, kms_key)
    _put(s3, bucket, f"{root}/manifest-files.checksum", _md5_b64(manifest_files).encode(), encryption, kms_key)
    summary = {
        "version": "2020-06-30",
        "exportArn": description["ExportArn"],
        "startTime": _iso(now),
        "endTime": _iso(now),
        "tableArn": description["TableArn"],
        "tableId": description["TableId"],
        "exportTime": _iso(description["ExportTime"]),
        "s3Bucket": description["S3Bucket"],
        "s3Prefix": description.get("S3Prefix"),
        "s3SseAlgorithm": description["S3SseAlgorithm"],
        "s3SseKmsKeyId": kms_key,
        "manifestFilesS3Key": f"{root}/manifest-files.json",
        "billedSizeBytes": billed,
        "itemCount": len(lines),
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    summary_body = json.dumps(summary).encode()
    _put(s3, bucket, f"{root}/manifest-summary.json", summary_body, encryption, kms_key)
    _put(s3, bucket, f"{root}/manifest-summary.checksum", _md5_b64(summary_body).encode(), encryption, kms_key)
    return {
        "ExportStatus": "COMPLETED",
        "EndTime": now,
        "ExportManifest": f"{root}/manifest-summary.json",
        "BilledSizeBytes": billed,
        "ItemCount": len(lines),
    }


def describe_export(self: DynamoHandler) -> Any:
    arn = str(self.body["ExportArn"])
    if arn not in REGISTRY.exports:
        raise ExportNotFoundException(arn)
    return ActionResult({"ExportDescription": REGISTRY.exports[arn].description})


def list_exports(self: DynamoHandler) -> Any:
    table_arn = self.body.get("TableArn")
    found = [
        export.description
        for export in REGISTRY.exports.values()
        if table_arn is None or export.description["TableArn"] == table_arn
    ]
    found.sort(key=lambda d: d["StartTime"])
    start = int(self.body.get("NextToken") or 0)
    size = int(self.body.get("MaxResults") or 25)
    page = found[start : start + size]
    answer: dict[str, Any] = {
        "ExportSummaries": [
            {"ExportArn": d["ExportArn"], "ExportStatus": d["ExportStatus"], "ExportType": d["ExportType"]}
            for d in page
        ]
    }
    if start + size < len(found):
        answer["NextToken"] = str(start + size)
    return ActionResult(answer)


def import_table(self: DynamoHandler) -> Any:
    body = self.body
    backend = self.dynamodb_backend
    now = time.time()
    source = body["S3BucketSource"]
    creation = body["TableCreationParameters"]
    name = str(creation["TableName"])
    if body.get("InputFormat") != "DYNAMODB_JSON":
        raise MockValidationException("The local emulator imports DYNAMODB_JSON only (CSV and ION are not emulated).")
    compression = body.get("InputCompressionType", "NONE")
    if compression not in {"GZIP", "NONE"}:
        raise MockValidationException(f"InputCompressionType {compression} is not emulated (GZIP or NONE).")
    if name in backend.tables:
        raise ResourceInUseException(f"Table already exists: {name}")
    table = backend.create_table(
        name=name,
        billing_mode=creation.get("BillingMode", "PROVISIONED"),
        throughput=creation.get("ProvisionedThroughput"),
        schema=creation["KeySchema"],
        global_indexes=creation.get("GlobalSecondaryIndexes"),
        indexes=None,
        attr=creation["AttributeDefinitions"],
        sse_specification=creation.get("SSESpecification"),
        streams=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    arn = f"{table.table_arn}/import/{_operation_id(now)}"
    description: dict[str, Any] = {
        "ImportArn": arn,
        "ImportStatus": "IN_PROGRESS",
        "TableArn": table.table_arn,
        "TableId": _table_id(table.table_arn),
        "S3BucketSource": source,
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": compression,
        "TableCreationParameters": creation,
        "StartTime": now,
        **({"ClientToken": body["ClientToken"]} if body.get("ClientToken") else {}),
    }
    start = dict(description)
    s3 = _s3_backend(backend.account_id)
    bucket = s3.buckets.get(str(source["S3Bucket"]))
    if bucket is None:
        backend.delete_table(name)  # a failed import leaves no table behind
        description |= {
            "ImportStatus": "FAILED",
            "EndTime": now,
            "FailureCode": "S3NoSuchBucket",
            "FailureMessage": "The specified bucket does not exist",
        }
    else:
        description |= _read_import(s3, bucket, table, str(source.get("S3KeyPrefix") or ""), compression, now)
    REGISTRY.imports[arn] = Import(description)
    return ActionResult({"ImportTableDescription": start})


def _read_import(s3: Any, bucket: Any, table: Any, prefix: str, compression: str, now: float) -> dict[str, Any]:
    processed = imported = errors = size = 0
    latest = sorted(bucket.keys.items())  # each key's latest version
    for key in [key for name, key in latest if name.startswith(prefix) and hasattr(key, "value")]:  # no delete markers
        raw = key.value
        size += len(raw)
        try:
            text = (gzip.decompress(raw) if compression == "GZIP" else raw).decode()
        except (OSError, UnicodeDecodeError):
            errors += 1
            continue
        for line in text.splitlines():
            if not line.strip():
                continue
            processed += 1
            try:
                item = json.loads(line)["Item"]
                table.put_item(item_attrs=item)
            except Exception:  # AWS logs a bad line to CloudWatch and goes on
                errors += 1
                continue
            imported += 1
    return {
        "ImportStatus": "COMPLETED",
        "EndTime": now,
        "ProcessedSizeBytes": size,
        "ProcessedItemCount": processed,
        "ImportedItemCount": imported,
        "ErrorCount": errors,
    }


def describe_import(self: DynamoHandler) -> Any:
    arn = str(self.body["ImportArn"])
    if arn not in REGISTRY.imports:
        raise ImportNotFoundException(arn)
    return ActionResult({"ImportTableDescription": REGISTRY.imports[arn].description})


def list_imports(self: DynamoHandler) -> Any:
    table_arn = self.body.get("TableArn")
    summaries = [
        {
            "ImportArn": d["ImportArn"],
            "ImportStatus": d["ImportStatus"],
            "TableArn": d["TableArn"],
            "S3BucketSource": d["S3BucketSource"],
            "InputFormat": d["InputFormat"],
            "StartTime": d["StartTime"],
            **({"EndTime": d["EndTime"]} if "EndTime" in d else {}),
        }
        for d in (i.description for i in REGISTRY.imports.values())
        if table_arn is None or d["TableArn"] == table_arn
    ]
    return ActionResult({"ImportSummaryList": summaries})


class InvalidRestoreTimeException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "InvalidRestoreTimeException", message)


_moto_restore = DynamoHandler.restore_table_to_point_in_time


def restore_table_to_point_in_time(self: DynamoHandler) -> Any:
    body = self.body
    now = time.time()
    name = str(body.get("SourceTableName") or str(body.get("SourceTableArn", "")).rsplit("/", 1)[-1])
    table = self.dynamodb_backend.tables.get(name)
    if table is not None:
        pitr = table.continuous_backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        if pitr != "ENABLED":
            raise JsonRESTError(
                ERROR_TYPE_PREFIX + "PointInTimeRecoveryUnavailableException",
                f"Point in time recovery is not enabled for table '{name}'",
            )
    if "RestoreDateTime" in body and not body.get("UseLatestRestorableTime"):
        at = _epoch(body["RestoreDateTime"])
        if at > now + 1:
            raise InvalidRestoreTimeException("RestoreDateTime must be at or before LatestRestorableDateTime.")
        if at < now - 60:
            raise MockValidationException(
                "The local emulator restores the table as it is now: a RestoreDateTime in the past is not emulated."
            )
    self.body = {**body, "SourceTableName": name}
    return _moto_restore(self)


def describe_continuous_backups(self: DynamoHandler) -> Any:
    """moto's answer, with the restorable window up to now (moto keeps the moment PITR was turned on)."""
    described = copy.deepcopy(self.dynamodb_backend.describe_continuous_backups(self.body["TableName"]))
    recovery = described["PointInTimeRecoveryDescription"]
    if recovery.get("PointInTimeRecoveryStatus") == "ENABLED":
        recovery["LatestRestorableDateTime"] = time.time()
    return ActionResult({"ContinuousBackupsDescription": described})


def install() -> None:
    """Replace moto's exports, imports and point-in-time restores in this process."""
    DynamoHandler.export_table_to_point_in_time = export_table_to_point_in_time  # type: ignore[method-assign]
    DynamoHandler.describe_export = describe_export  # type: ignore[method-assign]
    DynamoHandler.list_exports = list_exports  # type: ignore[method-assign]
    DynamoHandler.import_table = import_table  # type: ignore[method-assign]
    DynamoHandler.describe_import = describe_import  # type: ignore[method-assign]
    DynamoHandler.list_imports = list_imports  # type: ignore[attr-defined]
    DynamoHandler.restore_table_to_point_in_time = restore_table_to_point_in_time  # type: ignore[method-assign]
    DynamoHandler.describe_continuous_backups = describe_continuous_backups  # type: ignore[method-assign]
