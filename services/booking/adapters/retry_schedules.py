"""A delivery's next attempt as a one-time EventBridge Scheduler schedule (decision 0029).

`at(...)` in UTC, no flexible window (Scheduler invokes within that minute), deleted once it has run.
The name is the attempt's (a hash of subscription, message, attempt number and time) and so is the
client token: scheduling one attempt for one time twice makes one schedule. One attempt may be
scheduled for two times (its retry, made before an answer that then came, and a replay after it):
both fire, and the attempt is claimed before it is made, so it is sent once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.booking.adapters.one_time_schedules import schedule_once

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
        name = schedule_name(webhook_id, delivery_id, attempt, f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}")
        payload = {RETRY_KEY: {"webhookId": webhook_id, "deliveryId": delivery_id, "attempt": attempt}}
        # Scheduler hands the input to Lambda's queue, which takes it whatever the function's
        # concurrency; the attempt itself fails or succeeds inside the function, which schedules the next.
        schedule_once(
            self.client,
            name=name,
            group=self.group,
            at=at,
            target_arn=self.dispatcher_arn,
            role_arn=self.role_arn,
            payload=payload,
        )
