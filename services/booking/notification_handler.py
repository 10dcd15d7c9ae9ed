"""The notifications function (decision 0031): WhatsApp messages to customers who opted in.

Three triggers:
- a rule on the stage's bus sends it the booking events: a confirmation, a notice of a move or a
  cancel, and the booking's one reminder planned, moved or dropped (for customers who opted in);
- a reminder's one-time EventBridge Scheduler schedule, with `{"reminder": {bookingId, version}}`;
- a customer's opt-in, a one-time schedule the booking API makes, `{"optedIn": {customerId}}`: the
  reminders of the bookings they made before are planned.
"""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used
# isort: on

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from services.booking.adapters.notification_store import (
    OPTED_IN_KEY,
    REMINDER_KEY,
    DynamoDBContacts,
    DynamoDBNotifications,
    ScheduledReminders,
)
from services.booking.adapters.whatsapp import OutboxChannel, SocialMessagingChannel, UnconfiguredChannel
from services.booking.domain.notifications import Channel, Kind, Notified, Notifier, Outcome, Templates
from services.booking.settings import NotificationSettings
from services.common.aws import dynamodb_client, scheduler_client, socialmessaging_client
from services.common.clock import utc_now
from services.common.observability import Metric, count, identify, logger, observed, seconds
from services.common.settings import load_settings


def channel(settings: NotificationSettings) -> Channel:
    if settings.outbox:
        return OutboxChannel(Path(settings.outbox), utc_now)
    if settings.phone_number_id:
        return SocialMessagingChannel(socialmessaging_client(), settings.phone_number_id)
    return UnconfiguredChannel()


@cache
def notifier(own_arn: str) -> Notifier:
    """The composition root: built once per container, on first use (reminders invoke this function)."""
    settings = load_settings(NotificationSettings)
    client = dynamodb_client()
    notifications = DynamoDBNotifications(client, settings.table_name)
    reminders = ScheduledReminders(
        client, settings.table_name, scheduler_client(), settings.reminder_group, settings.reminder_role_arn, own_arn
    )
    templates = Templates(
        {kind: f"{settings.template_prefix}{kind.value.lower()}" for kind in Kind}, settings.template_language
    )
    return Notifier(
        notifications,
        DynamoDBContacts(client, settings.table_name),
        notifications,
        reminders,
        channel(settings),
        templates,
        utc_now,
    )


def observe(notified: Notified) -> None:
    if notified.outcome is Outcome.SENT:
        count(Metric.NOTIFICATION_SENT)
    elif notified.outcome is Outcome.FAILED:
        count(Metric.NOTIFICATION_FAILED)
    elif notified.outcome is Outcome.SKIPPED and notified.reason == "no consent":
        count(Metric.NOTIFICATION_SKIPPED_CONSENT)
    if notified.lead_minutes is not None:
        seconds(Metric.REMINDER_LEAD_TIME, notified.lead_minutes * 60)
    log = logger.warning if notified.outcome is Outcome.FAILED else logger.info
    log(
        "notification",
        kind=notified.kind.value if notified.kind else None,
        outcome=notified.outcome.value if notified.outcome else None,
        reason=notified.reason,
        reminderAt=notified.reminder_at.isoformat() if notified.reminder_at else None,
    )


@observed()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if OPTED_IN_KEY in event:
        planned = notifier(context.invoked_function_arn).on_opt_in(str(event[OPTED_IN_KEY]["customerId"]))
        logger.info("reminders planned for a customer who opted in", planned=len(planned))
        return {"planned": len(planned)}
    if REMINDER_KEY in event:
        asked = event[REMINDER_KEY]
        identify(bookingId=str(asked["bookingId"]))
        notified = notifier(context.invoked_function_arn).on_reminder(str(asked["bookingId"]), int(asked["version"]))
    else:
        data = event["detail"]["data"]
        identify(bookingId=str(data["bookingId"]), eventType=event["detail-type"])
        notified = notifier(context.invoked_function_arn).on_event(event["detail-type"], data)
    observe(notified)
    return {
        "kind": notified.kind.value if notified.kind else None,
        "outcome": notified.outcome.value if notified.outcome else None,
    }


init_gc.done()
