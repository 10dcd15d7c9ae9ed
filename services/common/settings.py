"""What every function's configuration has, and how it is read: once per container, from the environment.

Each service adds its functions' own fields in its `settings.py` (`services/booking/settings.py`,
`services/audit/settings.py`), so that a function builds the settings classes it uses and no others
(decision 0021)."""

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


Settings = TypeVar("Settings", bound=ServiceSettings)


@cache
def load_settings(model: type[Settings]) -> Settings:
    """Validate the environment against `model` once; a missing variable fails the first request loudly."""
    return model.model_validate(dict(os.environ))
