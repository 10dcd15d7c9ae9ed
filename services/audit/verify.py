"""Verify the audit archive: `make audit-verify`, or `python -m services.audit.verify`.

Walks every object of the archive, checks each entity's hash chain and compares the archive with the
audit table's history items and chain heads; prints the first break precisely and exits 1 when there
is one. Runs with the caller's credentials (it lists object versions, which the audit function may not).

    python -m services.audit.verify --local-stack http://127.0.0.1:3000   # the stack `make run` runs
    python -m services.audit.verify --table appointments-dev-audit --bucket B   # a deployed stage
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3

from services.audit.adapters.dynamodb_trail import DynamoDBAuditReader
from services.audit.adapters.s3_archive import S3Archive
from services.audit.domain.chain import Verification, verify
from services.common.clock import iso_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


def verify_trail(
    dynamodb: DynamoDBClient, s3: S3Client, table: str, bucket: str, settle_seconds: float = 0
) -> Verification:
    """The whole archive against the whole history: what `make audit-verify` and the tests run.
    History items younger than `settle_seconds` may still be on their way to the archive."""
    recent_since = iso_utc(datetime.now(UTC) - timedelta(seconds=settle_seconds)) if settle_seconds else None
    reader = DynamoDBAuditReader(dynamodb, table)
    # The heads are read after the history (verify consumes them last): a link appended in between
    # makes its head run ahead of the history, which its recent `lastAt` marks as pending.
    return verify(S3Archive(s3, bucket).objects(), reader.all_history(), recent_since, reader.chain_heads())


def local_stack_status(url: str) -> dict[str, Any]:
    """Where the running local stack keeps its tables, bucket, queues and functions (`GET /_local/status`)."""
    with urllib.request.urlopen(f"{url.rstrip('/')}/_local/status", timeout=10) as response:
        status: dict[str, Any] = json.load(response)
    return status


def local_stack_clients(status: dict[str, Any]) -> dict[str, Any]:
    """boto3 client options that reach the running local stack's emulator (`status` from `/_local/status`)."""
    return {
        "endpoint_url": status["emulator"],
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audit-verify", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--local-stack", metavar="URL", help="the local stack's URL (make run)")
    target.add_argument("--table", help="the audit trail table's name, appointments-<stage>-audit (a deployed stage)")
    parser.add_argument("--bucket", help="the audit bucket's name (with --table)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=300,
        help="history items younger than this may still be on their way to the archive (default 300)",
    )
    arguments = parser.parse_args(argv)
    options: dict[str, Any] = {}
    if arguments.local_stack:
        status = local_stack_status(arguments.local_stack)
        table, bucket = status["auditTable"], status["auditBucket"]
        options = local_stack_clients(status)
    elif arguments.bucket:
        table, bucket = arguments.table, arguments.bucket
    else:
        parser.error("--table needs --bucket")
    dynamodb, s3 = boto3.client("dynamodb", **options), boto3.client("s3", **options)
    result = verify_trail(dynamodb, s3, table, bucket, arguments.settle_seconds)
    print(f"s3://{bucket} against audit table {table}: {result.summary()}")
    for extra in sorted(result.breaks)[1:20]:
        print(f"  also: {extra}")
    return 0 if result.intact else 1


if __name__ == "__main__":
    sys.exit(main())
