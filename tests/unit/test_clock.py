"""The local stack's clock: forward only, within bounds, and moved everywhere or nowhere."""

from __future__ import annotations

import json
import math
import time

import pytest

from local.clock import MAX_OFFSET_SECONDS, StackClock
from local.lambda_runtime.stream_records import lambda_record


def test_the_clock_moves_forward_and_says_where_it_is() -> None:
    clock = StackClock()
    assert clock.offset == 0 and abs(clock.now() - time.time()) < 1
    assert clock.advance(3600) == 3600 and clock.advance(60) == 3660
    assert abs(clock.now() - time.time() - 3660) < 1
    assert clock.state()["offsetSeconds"] == 3660 and clock.state()["now"].endswith("Z")


@pytest.mark.parametrize("seconds", [0, -1, math.inf, -math.inf, math.nan, MAX_OFFSET_SECONDS + 1])
def test_a_move_backwards_nowhere_or_beyond_ten_years_is_refused(seconds: float) -> None:
    clock = StackClock()
    with pytest.raises(ValueError):
        clock.advance(seconds)
    assert clock.offset == 0


def test_a_move_a_listener_refuses_does_not_happen() -> None:
    clock = StackClock()
    told: list[float] = []

    def emulator(offset: float) -> None:
        told.append(offset)
        raise OSError("the emulator is gone")

    clock.listeners.append(emulator)
    with pytest.raises(OSError):
        clock.advance(60)
    assert told == [60] and clock.offset == 0  # the functions never ran ahead of the data's time


def test_a_delete_by_time_to_live_reaches_the_function_in_lambdas_spelling() -> None:
    record = {
        "eventID": "1",
        "eventName": "REMOVE",
        "dynamodb": {"SequenceNumber": "7", "Keys": {"PK": {"S": "x"}}},
        "userIdentity": {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"},  # as GetRecords answers
    }
    delivered = lambda_record(record, "arn:stream")
    assert delivered["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    del record["userIdentity"]
    assert "userIdentity" not in lambda_record(record, "arn:stream")  # a delete someone made has none


def test_binary_values_reach_a_function_as_base64_text_as_lambda_delivers_them() -> None:
    """GetRecords (boto3) answers binary attribute values as bytes; Lambda's JSON event carries them as
    base64 text, which boto3's deserializer cannot read back. So a reader that meets one fails here too."""
    from boto3.dynamodb.types import TypeDeserializer

    image = {"sealed": {"B": b"\x00\xffkey"}, "many": {"BS": [b"a", b"b"]}, "deep": {"M": {"x": {"B": b"y"}}}}
    record = {"eventID": "1", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "8", "NewImage": image}}
    delivered = lambda_record(record, "arn:stream")["dynamodb"]["NewImage"]
    assert delivered == {
        "sealed": {"B": "AP9rZXk="},
        "many": {"BS": ["YQ==", "Yg=="]},
        "deep": {"M": {"x": {"B": "eQ=="}}},
    }
    json.dumps(delivered)  # a Lambda event is JSON
    with pytest.raises(TypeError):
        TypeDeserializer().deserialize(delivered["sealed"])
