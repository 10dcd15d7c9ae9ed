"""DynamoDB Query items as DynamoDB sent them, without botocore's per-value parsing.

botocore turns a Query's JSON into Python by walking the response's shape: every attribute value is
an `AttributeValue` structure of ten members, looked up one by one. For a slot search over 62 days
(850 busy blocks, 290 KB) that walk cost three times the rest of the search together (boto3#2928,
botocore#3238; `make bench-slots`, decision 0023). The items' JSON is already the shape botocore
answers with, save for binary values, which botocore base64-decodes: so, through botocore's own
`before-parse` event, a Query's items are taken from the decoded body, and botocore parses the rest
(count, page key, consumed capacity). A body with a binary value is left to botocore whole.

The body is decoded by msgspec, which the functions carry already (decision 0034): the same Python
values as `json.loads`, in two thirds of the time (1.1 against 1.6 ms for a 62-day search's 340 KB).
"""

from __future__ import annotations

from typing import Any

import msgspec

# The key of a binary attribute value, as it can only appear in the JSON text: a quote inside a
# string value is escaped (\"), so `"B":` never occurs inside one.
_BINARY = (b'"B":', b'"BS":')


def items_as_sent(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """`before-parse.dynamodb.Query`: the items of a successful answer, straight from its JSON."""
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not isinstance(body, bytes) or any(b in body for b in _BINARY):
        return
    answer = msgspec.json.decode(body)
    items = answer.pop("Items", None)
    if not isinstance(items, list):
        return
    customized_response_dict["Items"] = items
    response_dict["body"] = msgspec.json.encode(answer)


def install(client: Any) -> None:
    """Read `client`'s Query answers this way."""
    client.meta.events.register("before-parse.dynamodb.Query", items_as_sent)
