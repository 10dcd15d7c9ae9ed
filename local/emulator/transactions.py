"""Corrections to moto that the local stack needs to behave like DynamoDB under load.

moto's `transact_write_items` deep-copies every table a transaction names, once per item, so that
it can roll back: a 10-item transaction against a 20,000-item table copies the table ten times.
A single-table design puts everything in that one table, so every booking would get slower as the
table grows. The replacement keeps DynamoDB's semantics with work proportional to the transaction:

1. validate the request (size, one operation per item, no item twice);
2. evaluate every condition against the current state, writing nothing; any failure cancels the
   whole transaction with per-item `CancellationReasons`, exactly as moto reported them;
3. apply the writes through moto's own put/update/delete, remembering each touched item's previous
   state; if a write fails validation, restore those items and drop the stream records written so
   far, so a cancelled transaction leaves neither data nor stream records behind.

It relies on the emulator serializing every request (see `server.py`): nothing else can
run between steps 2 and 3. See docs/decisions/0002-moto-transactions-and-serialization.md.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")
_Reason = tuple[str, str, dict[str, Any] | None] | tuple[None, None, None]


def _key_of(table: Table, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _check_condition(backend: DynamoDBBackend, op: dict[str, Any], key: dict[str, Any]) -> _Reason:
    """Evaluate one item's condition without writing; return its cancellation reason."""
    expression = op.get("ConditionExpression")
    if expression is None:
        return (None, None, None)
    current = backend.get_item(op["TableName"], key)
    condition = get_filter_expression(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", str(ConditionalCheckFailed().message), old)


class _Undo:
    """Previous states of the items a transaction touched, and the stream lengths before it."""

    def __init__(self) -> None:
        self.items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        self.stream_lengths: dict[int, tuple[Table, int]] = {}

    def remember(self, table: Table, key: dict[str, Any]) -> None:
        if id(table) not in self.stream_lengths and table.stream_shard is not None:
            self.stream_lengths[id(table)] = (table, len(table.stream_shard.items))
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        previous = table.get_item(hash_key, range_key)
        self.items.append((table, hash_key, range_key, copy.deepcopy(previous)))

    def restore(self) -> None:
        for table, hash_key, range_key, previous in reversed(self.items):
            if range_key is None:
                if previous is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = previous  # type: ignore[assignment]
            elif previous is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = previous
        for table, length in self.stream_lengths.values():
            if table.stream_shard is not None:
                del table.stream_shard.items[length:]


def _apply(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], overwrite=True)
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key)
    elif op_type == "Update":
        backend.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names or {},
            expression_attribute_values=values or {},
        )


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """TransactWriteItems with cost proportional to the transaction, not to the table."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    operations: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException()
        ((op_type, op),) = entry.items()
        if op_type not in _OPERATIONS:
            raise MockValidationException("Unsupported transaction operation")
        key = _key_of(self.get_table(op["TableName"]), op_type, op)
        identity = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        operations.append((op_type, op, key))

    reasons = [_check_condition(self, op, key) for _, op, key in operations]
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    undo = _Undo()
    for index, (op_type, op, key) in enumerate(operations):
        if op_type == "ConditionCheck":
            continue
        table = self.get_table(op["TableName"])
        undo.remember(table, key)
        try:
            _apply(self, op_type, op, key)
        except MockValidationException:
            undo.restore()
            raise
        except Exception as error:  # a write DynamoDB would refuse cancels the transaction
            undo.restore()
            failed: list[_Reason] = [(None, None, None)] * len(operations)
            failed[index] = (type(error).__name__, str(getattr(error, "message", error)), None)
            raise TransactionCanceledException(failed) from error


def install() -> None:
    """Replace moto's transaction implementation in this process."""
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
