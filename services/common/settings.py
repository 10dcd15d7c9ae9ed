"""Each function's configuration: one validated model, read from the environment once per container."""

from __future__ import annotations

import os
from functools import cache
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from services.common.cors import ALLOWED_ORIGINS_PATTERN

LogLevel = Literal["DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL"]


class ServiceSettings(BaseModel):
    """What every function's CloudFormation resource sets (see cloudformation/<service>.yaml)."""

    # Every function loads one of these models; each builds its validator when it is loaded, not when
    # a container starts (decision 0021).
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    stage: str = Field(alias="STAGE", min_length=1)
    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    service_name: str = Field(alias="POWERTOOLS_SERVICE_NAME", min_length=1)
    metrics_namespace: str = Field(alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)
    log_level: LogLevel = Field(alias="POWERTOOLS_LOG_LEVEL")
    # The staff user pool's `iss`: admins and ops are honoured only in its tokens (services/common/auth.py).
    staff_issuer: str = Field(alias="STAFF_ISSUER", pattern=r"^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/\S+$")
    # The stage's AllowedOrigins, comma-separated; empty for CORS off (services/common/cors.py).
    allowed_origins: str = Field(alias="ALLOWED_ORIGINS", pattern=ALLOWED_ORIGINS_PATTERN)


class AuditSettings(ServiceSettings):
    """The audit function also writes the trail's own table and the archive."""

    audit_table_name: str = Field(alias="AUDIT_TABLE_NAME", min_length=3)
    audit_bucket_name: str = Field(alias="AUDIT_BUCKET_NAME", min_length=3)


class BackupSettings(ServiceSettings):
    """The backup function (decision 0032) exports both tables to the backup bucket."""

    table_arn: str = Field(alias="TABLE_ARN", pattern=r"^arn:aws[a-z-]*:dynamodb:")
    audit_table_arn: str = Field(alias="AUDIT_TABLE_ARN", pattern=r"^arn:aws[a-z-]*:dynamodb:")
    backup_bucket_name: str = Field(alias="BACKUP_BUCKET_NAME", min_length=3)


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


Settings = TypeVar("Settings", bound=ServiceSettings)


@cache
def load_settings(model: type[Settings]) -> Settings:
    """Validate the environment against `model` once; a missing variable fails the first request loudly."""
    return model.model_validate(dict(os.environ))
