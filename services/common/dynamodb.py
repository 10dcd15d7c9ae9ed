"""DynamoDB helpers every adapter shares: item (de)serialization, opaque cursors, cancellation reasons."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from services.common.auth import Attribution
from services.common.errors import FieldError, ValidationFailedError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]  # DynamoDB's attribute-value form


def to_item(values: Mapping[str, Any]) -> Item:
    """Plain values (str, int, bool, list, dict; None dropped) in attribute-value form."""
    return {name: _serializer.serialize(value) for name, value in values.items() if value is not None}


def from_item(item: Item) -> dict[str, Any]:
    """An item as plain values, with whole numbers as int."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def attribution(by: Attribution, updated_at: str) -> dict[str, str]:
    """The attributes that tell the audit trail who changed an item, in which request, in which trace."""
    return {
        "actor": by.actor,
        "requestId": by.request_id,
        "traceId": by.trace_id,
        "spanId": by.span_id,
        "updatedAt": updated_at,
    }


def encode_cursor(last_evaluated_key: Item | None) -> str | None:
    if not last_evaluated_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_evaluated_key, separators=(",", ":")).encode()).decode()


def decode_cursor(
    cursor: str,
    expected: Mapping[str, str | None],
    *,
    sort_between: tuple[str, str, str] | None = None,
    sort_prefix: tuple[str, str] | None = None,
) -> Item:
    """A cursor back into a start key; refuses anything this API did not hand out for this query.

    `expected` names the key attributes; a non-None value pins it (e.g. the index's partition key).
    `sort_between` (attribute, low, high) and `sort_prefix` (attribute, prefix) are the query's sort
    key condition: DynamoDB refuses a start key outside it (ValidationException, a 500 if it got that
    far), so a cursor from another window of the same list is refused here, as the client's mistake.
    """
    invalid = ValidationFailedError(
        "The cursor is invalid.", [FieldError("query.cursor", "is not a cursor from this list")]
    )
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise invalid from error
    if not isinstance(key, dict) or set(key) != set(expected):
        raise invalid
    for name, pinned in expected.items():
        value = key[name]
        if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
            raise invalid
        if pinned is not None and value["S"] != pinned:
            raise invalid
    if sort_between is not None and not sort_between[1] <= key[sort_between[0]]["S"] <= sort_between[2]:
        raise invalid
    if sort_prefix is not None and not key[sort_prefix[0]]["S"].startswith(sort_prefix[1]):
        raise invalid
    return key


def cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    """Per-item reasons of a cancelled transaction, with the old item where one was asked for."""
    return [dict(reason) for reason in error.response.get("CancellationReasons", [])]


def cancellation_codes(error: ClientError) -> list[str]:
    """Per-item reason codes of a cancelled transaction (`None` for items that were fine)."""
    return [reason.get("Code", "None") for reason in cancellation_reasons(error)]


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
