"""The booking service's functions' configuration: the API's, the publisher's, the webhook dispatcher's and
the notifications'."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings


class PublisherSettings(ServiceSettings):
    """The publisher also puts the domain events on the stage's bus."""

    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)


class WebhookSettings(ServiceSettings):
    """Webhooks (decision 0029): the key that seals their secrets, where retries are scheduled, and
    whether receivers on loopback are allowed (the local stack only; `false` when deployed)."""

    webhook_key_id: str = Field(alias="WEBHOOK_KEY_ID", min_length=1)
    retry_group: str = Field(alias="WEBHOOK_RETRY_GROUP", min_length=1)
    retry_role_arn: str = Field(alias="WEBHOOK_RETRY_ROLE_ARN", min_length=1)
    allow_loopback: bool = Field(alias="WEBHOOK_LOOPBACK", default=False)


class BookingSettings(WebhookSettings):
    """The booking API also schedules a replay's attempt on the dispatcher, and, when a customer opts
    in to WhatsApp, the planning of their reminders on the notifications function (decision 0031)."""

    dispatcher_arn: str = Field(alias="WEBHOOK_DISPATCHER_ARN", min_length=1)
    reminder_group: str = Field(alias="REMINDER_GROUP", min_length=1)
    reminder_role_arn: str = Field(alias="REMINDER_ROLE_ARN", min_length=1)
    notifications_arn: str = Field(alias="NOTIFICATIONS_FUNCTION_ARN", min_length=1)


class NotificationSettings(ServiceSettings):
    """Notifications (decision 0031): where reminders are scheduled and as whom, the WhatsApp number
    that sends (empty: none configured, nothing sent), the templates, and on the local stack the
    outbox file that stands in for WhatsApp (empty when deployed)."""

    reminder_group: str = Field(alias="REMINDER_GROUP", min_length=1)
    reminder_role_arn: str = Field(alias="REMINDER_ROLE_ARN", min_length=1)
    phone_number_id: str = Field(alias="WHATSAPP_PHONE_NUMBER_ID", default="")
    template_language: str = Field(alias="WHATSAPP_TEMPLATE_LANGUAGE", default="en", min_length=2)
    template_prefix: str = Field(alias="WHATSAPP_TEMPLATE_PREFIX", default="appointment_")
    outbox: str = Field(alias="WHATSAPP_OUTBOX", default="")
