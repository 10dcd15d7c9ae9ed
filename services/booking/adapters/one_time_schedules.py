"""A one-time EventBridge Scheduler schedule that invokes one of our functions (decisions 0029, 0031).

`at(...)` in UTC, no flexible window (Scheduler invokes within that minute), deleted once it has run.
The name is the client token too: making the same schedule twice makes one. Scheduler hands the
input to Lambda's queue for asynchronous invocations, and retries nothing: whatever runs claims its
work first, so a schedule that fires twice does it once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from services.common.dynamodb import error_code

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient


def schedule_once(
    client: EventBridgeSchedulerClient,
    *,
    name: str,
    group: str,
    at: datetime,
    target_arn: str,
    role_arn: str,
    payload: dict[str, Any],
) -> None:
    """Make the schedule; one of that name made already (by the same request, earlier) is no error."""
    when = f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"
    try:
        client.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression=f"at({when})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            ClientToken=name,
            Target={
                "Arn": target_arn,
                "RoleArn": role_arn,
                "Input": json.dumps(payload, separators=(",", ":")),
                "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 3600},
            },
        )
    except ClientError as error:
        if error_code(error) != "ConflictException":
            raise
