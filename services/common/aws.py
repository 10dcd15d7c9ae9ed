"""AWS clients, created lazily once per container and shared by every adapter in it.

Endpoints come from the environment as botocore reads it (`AWS_ENDPOINT_URL` on the local stack),
so nothing here knows where it runs.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from services.common import query_items
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
    client = boto3.client("dynamodb", config=_CONFIG)
    instrument(client)
    query_items.install(client)
    return client


@cache
def s3_client() -> S3Client:
    client = boto3.client("s3", config=_CONFIG)
    instrument(client)
    return client


@cache
def events_client() -> EventBridgeClient:
    client = boto3.client("events", config=_CONFIG)
    instrument(client)
    return client


@cache
def kms_client() -> KMSClient:
    client = boto3.client("kms", config=_CONFIG)
    instrument(client)
    return client


@cache
def socialmessaging_client() -> Any:  # no type stubs installed for it (boto3-stubs' extra would be one more package)
    """Its own retries off: `adapters/whatsapp.py` resends only what certainly was not sent."""
    client = boto3.client("socialmessaging", config=SOCIAL_MESSAGING_CONFIG)
    instrument(client)
    return client


@cache
def scheduler_client() -> EventBridgeSchedulerClient:
    client = boto3.client("scheduler", config=_CONFIG)
    instrument(client)
    return client
