"""Which one-time EventBridge Scheduler schedules are due: `GET /_schedules/due?before=<epoch s>&group=…`.

The local stack fires the one-time schedules the functions create (a webhook's retry, a booking's
reminder: local/scheduler/schedules.py). Finding the due ones through the Scheduler API means listing
every schedule of every group, page by page, each second: with thousands of reminders waiting for days
that is most of the emulator's time, and the emulator serves one request at a time. This answers the
same question from moto's memory in one request, under the emulator's lock: the schedules whose
`at()` (in their time zone) is at or before `before`, still there and enabled.

The answer is `{"due": [{"group": …, "name": …}, …]}`; the caller reads each with `GetSchedule`, so
what it fires is what the API says.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from moto.scheduler.exceptions import ValidationException
from moto.scheduler.models import scheduler_backends

from local.emulator.scheduler_refusals import one_time_instant

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PATH = "/_schedules/due"


@lru_cache(maxsize=65_536)
def _fires_at(expression: str, time_zone: str | None) -> float | None:
    try:
        instant: datetime | None = one_time_instant(expression, time_zone)
    except ValidationException:
        return None  # refused when created; nothing of this kind is stored
    return instant.timestamp() if instant is not None else None


def due(groups: Iterable[str], before: float) -> Iterator[tuple[str, str]]:
    """(group, name) of every enabled one-time schedule in `groups` due at or before `before`."""
    wanted = set(groups)
    for _account, _region, backend in scheduler_backends.iter_backends():
        for group_name, group in backend.schedule_groups.items():  # type: ignore[attr-defined]
            if group_name not in wanted:
                continue
            for name, schedule in list(group.schedules.items()):
                fires = _fires_at(schedule.schedule_expression, schedule.schedule_expression_timezone)
                if fires is not None and fires <= before and schedule.state == "ENABLED":
                    yield group_name, name


class DueSchedules:
    """Answers `GET /_schedules/due`; everything else goes to the wrapped app. It sits inside the
    emulator's lock, since it reads moto's state."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        try:
            before = float(query["before"][0])
        except (KeyError, ValueError):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"before=<seconds since the epoch> is required"]
        found = [{"group": group, "name": name} for group, name in due(query.get("group", []), before)]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"due": found}).encode()]
