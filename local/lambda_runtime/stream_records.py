"""DynamoDB stream records as Lambda delivers them to a function.

The streams API (`GetRecords`) and a Lambda event source mapping speak almost the same shape; the
mapping adds `eventSourceARN` and gives `ApproximateCreationDateTime` as epoch seconds. The local
stream runner (audit issue) uses this to hand the audit consumer real events.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from local.account import REGION


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """One `GetRecords` record in the form a Lambda event source mapping delivers it."""
    stream = {name: _json_form(value) for name, value in record["dynamodb"].items()}
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": stream,
        "eventSourceARN": stream_arn,
        # Only on a delete DynamoDB made itself (time to live), in Lambda's spelling of GetRecords' Identity
        **({"userIdentity": _identity(record["userIdentity"])} if "userIdentity" in record else {}),
    }


def stream_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """A batch, as the function receives it."""
    return {"Records": [lambda_record(record, stream_arn) for record in records]}


def _json_form(value: Any) -> Any:
    """Binary attribute values (`B`, `BS`) as Lambda's JSON event carries them: base64 text, as boto3
    does not decode them back (its `Binary` refuses text). A reader that expects bytes fails here as
    it would on AWS."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {name: _json_form(inner) for name, inner in value.items()}
    if isinstance(value, list):
        return [_json_form(inner) for inner in value]
    return value


def _identity(identity: dict[str, Any]) -> dict[str, Any]:
    return {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
