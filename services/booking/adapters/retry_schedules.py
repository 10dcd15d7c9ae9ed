"""A delivery's next attempt as a one-time EventBridge Scheduler schedule (decision 0029).

`at(...)` in UTC, no flexible window (Scheduler invokes within that minute), deleted once it has run.
The name is the attempt's (a hash of subscription, message, attempt number and time) and so is the
client token: scheduling one attempt for one time twice makes one schedule. One attempt may be
scheduled for two times (its retry, made before an answer that then came, and a replay after it):
both fire, and the attempt is claimed before it is made, so it is sent once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from services.common.dynamodb import error_code

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

RETRY_KEY = "webhookAttempt"  # the dispatcher's input: {"webhookAttempt": {webhookId, deliveryId, attempt}}


def schedule_name(webhook_id: str, delivery_id: str, attempt: int, at: str) -> str:
    """At most 64 characters of [0-9a-zA-Z-_.], as Scheduler requires."""
    digest = hashlib.sha256(f"{webhook_id}/{delivery_id}/{attempt}/{at}".encode()).hexdigest()[:40]
    return f"webhook-{attempt}-{digest}"


class ScheduledRetries:
    def __init__(self, client: EventBridgeSchedulerClient, group: str, role_arn: str, dispatcher_arn: str) -> None:
        self.client, self.group, self.role_arn, self.dispatcher_arn = client, group, role_arn, dispatcher_arn

    def schedule(self, webhook_id: str, delivery_id: str, attempt: int, at: datetime) -> None:
        when = f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"
        name = schedule_name(webhook_id, delivery_id, attempt, when)
        payload = {RETRY_KEY: {"webhookId": webhook_id, "deliveryId": delivery_id, "attempt": attempt}}
        try:
            self.client.create_schedule(
                Name=name,
                GroupName=self.group,
                ScheduleExpression=f"at({when})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                ClientToken=name,
                Target={
                    "Arn": self.dispatcher_arn,
                    "RoleArn": self.role_arn,
                    "Input": json.dumps(payload, separators=(",", ":")),
                    # Scheduler hands the input to Lambda's queue for asynchronous invocations, which
                    # takes it whatever the function's concurrency; the attempt itself fails or
                    # succeeds inside the function, which schedules the next one.
                    "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 3600},
                },
            )
        except ClientError as error:
            if error_code(error) != "ConflictException":  # scheduled already: the same attempt
                raise
