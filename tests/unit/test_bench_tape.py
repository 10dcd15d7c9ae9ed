"""The handler benchmark's tape (loadtests/tape.py): replayed answers reach the caller
as if AWS sent them, nothing leaves the process, and a replay that strays from the recording stops."""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from loadtests.tape import Exchange, Tape

# Port 9 (discard) on loopback: a request that really left would fail to connect.
NOWHERE = "http://127.0.0.1:9"


def client_with(tape: Tape) -> Any:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    tape.install(session)
    return session.client("dynamodb", endpoint_url=NOWHERE, config=Config(retries={"max_attempts": 1}))


def item_answer() -> Exchange:
    body = json.dumps({"Item": {"PK": {"S": "BOOKING#1"}, "status": {"S": "CONFIRMED"}}}).encode()
    return Exchange("dynamodb.GetItem", 200, {"Content-Type": "application/x-amz-json-1.0"}, body, 0)


def test_a_replayed_answer_is_parsed_as_aws_sent_it_and_nothing_is_sent() -> None:
    tape = Tape()
    dynamodb = client_with(tape)
    tape.exchanges = [item_answer()]
    tape.replay()
    for _ in range(3):  # every call of a case gets the same answers again
        answer = dynamodb.get_item(TableName="t", Key={"PK": {"S": "BOOKING#1"}})
        assert answer["Item"]["status"] == {"S": "CONFIRMED"}
        tape.rewind()


def test_on_a_botocore_session_as_the_functions_make_their_clients_a_replayed_answer_is_parsed() -> None:
    session = botocore.session.get_session()
    session.set_credentials("x", "x")
    tape = Tape()
    tape.install(session)
    dynamodb: Any = session.create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=NOWHERE, config=Config(retries={"max_attempts": 1})
    )
    tape.exchanges = [item_answer()]
    tape.replay()
    assert dynamodb.get_item(TableName="t", Key={"PK": {"S": "BOOKING#1"}})["Item"]["status"] == {"S": "CONFIRMED"}
    tape.rewind()


def test_a_replay_that_asks_for_another_call_or_fewer_calls_stops_the_benchmark() -> None:
    tape = Tape()
    dynamodb = client_with(tape)
    tape.exchanges = [item_answer()]
    tape.replay()
    with pytest.raises(RuntimeError, match=r"asked for dynamodb\.PutItem; the recording has dynamodb\.GetItem"):
        dynamodb.put_item(TableName="t", Item={"PK": {"S": "x"}})
    tape.replay()
    with pytest.raises(RuntimeError, match="made 0 AWS calls; the recording 1"):
        tape.rewind()


def test_recording_keeps_each_answer_and_the_size_of_what_was_sent() -> None:
    tape = Tape()
    tape.record()
    tape._send("before-send.s3.PutObject", type("Request", (), {"headers": {"Content-Length": "553"}})())
    tape._received("response-received.s3.PutObject", {"status_code": 200, "headers": {"ETag": '"e"'}, "body": b""})
    assert tape.exchanges == [Exchange("s3.PutObject", 200, {"ETag": '"e"'}, b"", 553)]
