"""EventBridge Scheduler's refusals that moto skips, added so that what AWS refuses fails here too.

- A one-time schedule's `at(yyyy-mm-ddThh:mm:ss)` must be well formed and, as AWS checks when the
  schedule is created, not in the past (on the stack's clock, which this process's time follows):
  moto stores either, and it would then never fire here while AWS refused it.
- A schedule in a group that does not exist is `ResourceNotFoundException` (moto: a KeyError, a 500).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moto.scheduler.exceptions import ScheduleGroupNotFound, ValidationException
from moto.scheduler.models import EventBridgeSchedulerBackend

AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")

_moto_create = EventBridgeSchedulerBackend.create_schedule


def one_time_instant(expression: str, timezone: str | None) -> datetime | None:
    """When an `at()` expression fires (in its time zone, UTC by default); None for another kind."""
    if not expression.startswith("at("):
        return None
    found = AT.fullmatch(expression)
    if found is None:
        raise ValidationException(f"Invalid Schedule Expression {expression}.")
    try:
        zone = ZoneInfo(timezone or "UTC")
        return datetime.fromisoformat(found.group(1)).replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise ValidationException(f"Invalid Schedule Expression {expression}: {error}.") from error


def create_schedule(self: EventBridgeSchedulerBackend, *args: Any, **kwargs: Any) -> Any:
    group = kwargs.get("group_name") or "default"
    if group not in self.schedule_groups:
        raise ScheduleGroupNotFound(group)
    fires = one_time_instant(str(kwargs.get("schedule_expression", "")), kwargs.get("schedule_expression_timezone"))
    if fires is not None and fires < datetime.now(UTC).replace(microsecond=0):
        raise ValidationException("The at() time of a one-time schedule cannot be in the past.")
    return _moto_create(self, *args, **kwargs)


def install() -> None:
    EventBridgeSchedulerBackend.create_schedule = create_schedule  # type: ignore[method-assign]
