"""AWS clients, created lazily once per container and shared by every adapter in it.

Endpoints come from the environment as botocore reads it (`AWS_ENDPOINT_URL` on the local stack),
so nothing here knows where it runs.

The clients are botocore's, made by the container's one botocore session (`aws_session.py`): boto3
adds resources, S3 transfers and their documentation, none of which a function uses, and importing it
costs every cold start (decision 0035). A boto3 client is this same client, made by a botocore
session boto3 holds.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, cast

from botocore.config import Config

from services.common import query_items
from services.common.aws_session import session
from services.common.tracing import instrument

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

# Bounded retries with backoff for throttling and transient errors; short timeouts because an API
# request has 29 s in total and a function 10 s.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
# One attempt per call: a WhatsApp message resent after a timeout may arrive twice (adapters/whatsapp.py).
SOCIAL_MESSAGING_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=10
)


@cache
def dynamodb_client() -> DynamoDBClient:
    client = cast("DynamoDBClient", session().create_client("dynamodb", config=_CONFIG))
    instrument(client)
    query_items.install(client)
    return client


@cache
def s3_client() -> S3Client:
    client = cast("S3Client", session().create_client("s3", config=_CONFIG))
    instrument(client)
    return client


@cache
def events_client() -> EventBridgeClient:
    client = cast("EventBridgeClient", session().create_client("events", config=_CONFIG))
    instrument(client)
    return client


@cache
def kms_client() -> KMSClient:
    client = cast("KMSClient", session().create_client("kms", config=_CONFIG))
    instrument(client)
    return client


@cache
def socialmessaging_client() -> Any:  # no type stubs installed for it (boto3-stubs' extra would be one more package)
    """Its own retries off: `adapters/whatsapp.py` resends only what certainly was not sent."""
    client = session().create_client("socialmessaging", config=SOCIAL_MESSAGING_CONFIG)
    instrument(client)
    return client


@cache
def scheduler_client() -> EventBridgeSchedulerClient:
    client = cast("EventBridgeSchedulerClient", session().create_client("scheduler", config=_CONFIG))
    instrument(client)
    return client
