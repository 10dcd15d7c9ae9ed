"""The audit service's functions' configuration: the audit function's and the backup function's."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    """The audit function also writes the trail's own table and the archive."""

    audit_table_name: str = Field(alias="AUDIT_TABLE_NAME", min_length=3)
    audit_bucket_name: str = Field(alias="AUDIT_BUCKET_NAME", min_length=3)


class BackupSettings(ServiceSettings):
    """The backup function (decision 0032) exports both tables to the backup bucket."""

    table_arn: str = Field(alias="TABLE_ARN", pattern=r"^arn:aws[a-z-]*:dynamodb:")
    audit_table_arn: str = Field(alias="AUDIT_TABLE_ARN", pattern=r"^arn:aws[a-z-]*:dynamodb:")
    backup_bucket_name: str = Field(alias="BACKUP_BUCKET_NAME", min_length=3)
