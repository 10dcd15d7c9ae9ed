"""The table probe behind `GET /health`: one DescribeTable, timed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct

from services.availability.domain.health import TableStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoDBTableProbe(Struct, frozen=True):
    client: DynamoDBClient
    table_name: str

    def probe(self) -> TableStatus:
        started = time.perf_counter()
        try:
            status = self.client.describe_table(TableName=self.table_name)["Table"]["TableStatus"]
        except (ClientError, BotoCoreError):
            return TableStatus(self.table_name, reachable=False)
        latency_ms = (time.perf_counter() - started) * 1000
        return TableStatus(self.table_name, reachable=status in {"ACTIVE", "UPDATING"}, latency_ms=latency_ms)
