"""DynamoDB's own refusals that moto skips, added to the emulator so that what AWS refuses fails here.

- A query's `ExclusiveStartKey` outside its key condition: DynamoDB answers `ValidationException`
  ("The provided starting key is outside query boundaries based on provided conditions" for another
  partition, "… does not match the range key predicate" for a sort key outside the condition); moto
  answers the page. A cursor reused with another partition or another range would pass locally and
  be a 500 on AWS.

Other refusals the code relies on are moto's own and held by tests/integration/test_dynamodb_refusals.py
(an item over 400 KB, a transaction over 100 items or naming one item twice, unused expression values
and names). Installed in the emulator process with the transaction rewrite (`transactions.py`).
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType

OUTSIDE = "The provided starting key is outside query boundaries based on provided conditions"
NOT_IN_RANGE = "The provided starting key does not match the range key predicate"

_moto_query = DynamoDBBackend.query


def query(
    self: DynamoDBBackend, table_name: str, hash_key_dict: dict[str, Any] | None, *args: Any, **kwargs: Any
) -> Any:
    """moto's query, after DynamoDB's check that the start key lies within the key condition."""
    start = kwargs.get("exclusive_start_key") if "exclusive_start_key" in kwargs else _positional(args, 3)
    if start:
        range_comparison = kwargs.get("range_comparison", _positional(args, 0))
        range_values = kwargs.get("range_value_dicts", _positional(args, 1)) or []
        index_name = kwargs.get("index_name", _positional(args, 6))
        hash_conditions = kwargs.get("hash_key_conditions") or []
        table = self.get_table(table_name)
        hash_name, range_name = _key_names(table, index_name)
        expected_hash = dict(hash_conditions).get(hash_name, hash_key_dict)
        if expected_hash is not None and start.get(hash_name) != expected_hash:
            raise MockValidationException(OUTSIDE)
        if range_comparison and range_name is not None and range_name in start:
            values = [DynamoType(value) for value in range_values]
            if not DynamoType(start[range_name]).compare(range_comparison, values):
                raise MockValidationException(NOT_IN_RANGE)
    return _moto_query(self, table_name, hash_key_dict, *args, **kwargs)


def _positional(args: tuple[Any, ...], index: int) -> Any:
    return args[index] if len(args) > index else None


def _key_names(table: Any, index_name: str | None) -> tuple[str, str | None]:
    """The partition and sort key attribute names of the table, or of the queried index."""
    if not index_name:
        return table.hash_key_attr, table.range_key_attr
    (index,) = [index for index in table.all_indexes() if index.name == index_name] or [None]
    if index is None:  # moto answers the unknown index itself
        return table.hash_key_attr, table.range_key_attr
    hash_name = next(key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH")
    range_name = next((key["AttributeName"] for key in index.schema if key["KeyType"] == "RANGE"), None)
    return hash_name, range_name


def install() -> None:
    """Add the refusals to moto in this process."""
    DynamoDBBackend.query = query  # type: ignore[method-assign]
