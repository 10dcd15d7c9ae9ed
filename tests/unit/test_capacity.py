"""DynamoDB's capacity arithmetic (local/emulator/capacity.py), against hand-computed cases."""

from __future__ import annotations

from local.emulator.capacity import item_size, read_units, write_units


def test_an_item_is_its_attribute_names_plus_their_values() -> None:
    assert item_size({"PK": {"S": "abc"}}) == 2 + 3
    assert item_size({"PK": {"S": "é"}, "ok": {"BOOL": True}}) == (2 + 2) + (2 + 1)  # UTF-8 bytes
    # Documents: 3 bytes, plus 1 per element, plus the elements (and a map's names).
    assert item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + (1 + 1 + 2)
    assert item_size({"l": {"L": [{"S": "xy"}, {"NULL": True}]}}) == 1 + 3 + (1 + 2) + (1 + 1)
    # Numbers: a byte per two significant digits, plus one.
    assert item_size({"n": {"N": "12345"}}) == 1 + 3 + 1
    assert item_size({"n": {"N": "-0.00120"}}) == 1 + 1 + 1
    assert item_size({"b": {"B": "AAEC"}, "ss": {"SS": ["a", "bc"]}}) == (1 + 3) + (2 + 3)  # binary: decoded bytes


def test_reads_are_4_kb_units_halved_when_eventually_consistent_and_doubled_in_transactions() -> None:
    assert read_units(0, consistent=True) == 1  # a miss still costs the minimum
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(4097, consistent=False) == 1
    assert read_units(100, consistent=False) == 0.5
    assert read_units(8193, consistent=True, transactional=True) == 6


def test_writes_are_1_kb_units_at_least_one_and_doubled_in_transactions() -> None:
    assert write_units(0) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert write_units(1025, transactional=True) == 4


def test_a_binary_value_counts_its_bytes_however_moto_keeps_it() -> None:
    import base64

    from local.emulator.capacity import value_size

    raw = bytes(range(32))  # a sealing key (services/audit/adapters/dynamodb_customer_keys.py)
    assert value_size({"B": base64.b64encode(raw).decode()}) == 32  # as the request sent it
    assert value_size({"B": raw}) == 32  # as an UpdateItem's SET leaves it
    assert value_size({"BS": [raw, base64.b64encode(raw[:4]).decode()]}) == 36
