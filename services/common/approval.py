"""Bookings whose approval deadline passed undecided, as both services find them (decision 0025).

Every reader sees such a booking as EXPIRED and its time as free, but its limit counts stay raised
until its expiry is written. The booking service writes it down when a full counter refuses someone
near it; explain (the availability service) leaves those counts out. Both find them the same way:
in the provider's index of bookings (GSI1, eventually consistent, which a deadline long passed does
not mind), within a window of starts, still PENDING past their deadline.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.common import keys
from services.common.clock import iso_utc
from services.common.dynamodb import Item, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def lapsed_approvals(
    client: DynamoDBClient, table: str, provider_id: str, window: tuple[datetime, datetime], now: datetime
) -> list[Item]:
    """The provider's bookings starting within `window` still PENDING past their deadline at `now`, as
    DynamoDB holds them (every page)."""
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": "GSI1",
        "KeyConditionExpression": "GSI1PK = :p AND GSI1SK BETWEEN :lo AND :hi",
        "FilterExpression": "#status = :pending AND approvalExpiresAt <= :now",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": to_item(
            {
                ":p": f"{keys.provider_pk(provider_id)}#BOOKINGS",
                ":lo": iso_utc(window[0]),
                ":hi": iso_utc(window[1]) + "~",
                ":pending": "PENDING",
                ":now": int(now.timestamp()),
            }
        ),
    }
    found: list[Item] = []
    while True:
        page = client.query(**request)
        found += [dict(item) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
