"""DynamoDB helpers every adapter shares: item (de)serialization, opaque cursors, cancellation reasons.

Items are converted here rather than by boto3's `TypeSerializer` and `TypeDeserializer`: importing
`boto3.dynamodb.types` imports all of boto3 (resources, S3 transfers, their documentation), which no
function otherwise needs and every cold start would pay for (decision 0035). The conversions are
boto3's, value for value, with its number rules (DynamoDB's 38 digits, no float, no NaN);
`tests/unit/test_dynamodb_items.py` holds them to boto3's own on generated values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

from botocore.exceptions import ClientError

from services.common.auth import Attribution
from services.common.errors import FieldError, ValidationFailedError

Item = dict[str, Any]  # DynamoDB's attribute-value form

# What DynamoDB stores of a number: 38 significant digits, exponents within its range; a number
# it would round or clamp is refused (boto3's DYNAMODB_CONTEXT).
NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def to_item(values: Mapping[str, Any]) -> Item:
    """Plain values (str, int, Decimal, bool, bytes, list, tuple, dict, sets; None dropped) in
    attribute-value form."""
    return {name: attribute_value(value) for name, value in values.items() if value is not None}


def from_item(item: Item) -> dict[str, Any]:
    """An item as plain values: whole numbers as int, others as float, binary as bytes."""
    return {name: plain_value(value) for name, value in item.items()}


def attribute_value(value: Any) -> dict[str, Any]:
    """One value in attribute-value form, as boto3's `TypeSerializer.serialize` makes it."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": value}
    if isinstance(value, AbstractSet):
        if all(_is_number(member) for member in value):  # an empty set too, as boto3 has it
            return {"NS": [_number(member) for member in value]}
        if all(isinstance(member, str) for member in value):
            return {"SS": list(value)}
        if all(isinstance(member, (bytes, bytearray)) for member in value):
            return {"BS": list(value)}
    elif isinstance(value, Mapping):
        return {"M": {key: attribute_value(member) for key, member in value.items()}}
    elif isinstance(value, (list, tuple)):
        return {"L": [attribute_value(member) for member in value]}
    raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def plain_value(value: Mapping[str, Any]) -> Any:
    """One attribute value as a plain one (`from_item`)."""
    if len(value) != 1:
        raise TypeError("Value must be a nonempty dictionary whose key is a valid dynamodb type.")
    [(kind, content)] = value.items()
    if kind == "S" or kind == "BOOL":
        return content
    if kind == "N":
        return _from_number(content)
    if kind == "M":
        return {key: plain_value(member) for key, member in content.items()}
    if kind == "L":
        return [plain_value(member) for member in content]
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(content)
    if kind == "SS":
        return set(content)
    if kind == "NS":
        return {_from_number(member) for member in content}
    if kind == "BS":
        return {bytes(member) for member in content}
    raise TypeError(f"Dynamodb type {kind} is not supported")


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    return isinstance(value, (int, Decimal))  # a bool too, where a set's members are asked (boto3's rule)


def _number(value: int | Decimal) -> str:
    number = str(NUMBERS.create_decimal(value))
    if number in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


def _from_number(text: str) -> int | float:
    number = NUMBERS.create_decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def attribution(by: Attribution, updated_at: str) -> dict[str, str | bool]:
    """The attributes that tell the audit trail who changed an item, in which request, in which trace
    (and whether the client chose that trace: then it is a lead, not proof)."""
    return {
        "actor": by.actor,
        "requestId": by.request_id,
        "traceId": by.trace_id,
        "traceFromClient": by.trace_from_client,
        "spanId": by.span_id,
        "updatedAt": updated_at,
    }


def update_of(values: Mapping[str, Any], *, remove: tuple[str, ...] = (), bump_version: bool = False) -> dict[str, Any]:
    """An UpdateItem's `UpdateExpression` and its names and values: SET each of `values` (every name
    through a placeholder, so reserved words such as `status` need no care), REMOVE `remove`, and
    with `bump_version` ADD 1 to `version`. A condition's own names and values are added by the caller
    (`#a<i>` names the i-th of `values`)."""
    if any(value is None for value in values.values()):
        raise ValueError("a value to SET is None: REMOVE it instead")
    names = {f"#a{i}": name for i, name in enumerate([*values, *remove])}
    expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(values)))
    if remove:
        expression += " REMOVE " + ", ".join(f"#a{len(values) + i}" for i in range(len(remove)))
    attribute_values = to_item({f":a{i}": value for i, value in enumerate(values.values())})
    if bump_version:
        expression += " ADD version :one"
        attribute_values[":one"] = {"N": "1"}
    return {
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": attribute_values,
    }


# What a cursor is bound to: the query that made it, whatever page size is asked for next.
_QUERY_FIELDS = (
    "TableName", "IndexName", "KeyConditionExpression", "FilterExpression",
    "ExpressionAttributeNames", "ExpressionAttributeValues",
)  # fmt: skip


class InvalidCursorError(ValidationFailedError):
    """A cursor this API did not hand out for this very query (another window, filter or list, or altered)."""

    code = "INVALID_CURSOR"

    def __init__(self) -> None:
        super().__init__("The cursor is invalid.", [FieldError("query.cursor", "is not a cursor from this query")])


def _binding(request: Mapping[str, Any]) -> str:
    bound = {name: request[name] for name in _QUERY_FIELDS if name in request}
    return hashlib.sha256(json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def encode_cursor(last_evaluated_key: Item | None, request: Mapping[str, Any]) -> str | None:
    """The next page's cursor: opaque to clients, carrying the start key and the query it belongs to."""
    if not last_evaluated_key:
        return None
    token = {"k": last_evaluated_key, "q": _binding(request)}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str,
    request: Mapping[str, Any],
    expected: Mapping[str, str | None],
    *,
    sort_between: tuple[str, str, str] | None = None,
    sort_prefix: tuple[str, str] | None = None,
) -> Item:
    """A cursor back into a start key; refuses (400 INVALID_CURSOR) anything this API did not hand out
    for this query.

    The cursor must name `request` (its table, index, key condition, filter and values: another
    window or filter of the same list is another query). Its key must then have exactly the
    attributes `expected` names, a non-None value pinning one (e.g. the index's partition key), and
    lie within `sort_between` (attribute, low, high) or `sort_prefix` (attribute, prefix): DynamoDB
    refuses a start key outside the key condition (ValidationException, a 500 if it got that far). A
    client who rewrites a cursor by hand can at most start this same query, over its own results,
    elsewhere.
    """
    try:
        token = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as error:  # deep nesting too
        raise InvalidCursorError() from error
    if not isinstance(token, dict) or set(token) != {"k", "q"} or token["q"] != _binding(request):
        raise InvalidCursorError()
    key = token["k"]
    if not isinstance(key, dict) or set(key) != set(expected):
        raise InvalidCursorError()
    for name, pinned in expected.items():
        value = key[name]
        if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
            raise InvalidCursorError()
        if pinned is not None and value["S"] != pinned:
            raise InvalidCursorError()
    if sort_between is not None and not sort_between[1] <= key[sort_between[0]]["S"] <= sort_between[2]:
        raise InvalidCursorError()
    if sort_prefix is not None and not key[sort_prefix[0]]["S"].startswith(sort_prefix[1]):
        raise InvalidCursorError()
    return key


def cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    """Per-item reasons of a cancelled transaction, with the old item where one was asked for."""
    return [dict(reason) for reason in error.response.get("CancellationReasons", [])]


def cancellation_codes(error: ClientError) -> list[str]:
    """Per-item reason codes of a cancelled transaction (`None` for items that were fine)."""
    return [reason.get("Code", "None") for reason in cancellation_reasons(error)]


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
