"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS=tests.fuzz.hooks): the rules between
parameters that the API document states in words, because OpenAPI 3.0's schemas describe each
parameter and field alone, and the one answer no document can predict (a made-up cursor).

Only cases schemathesis generates as *valid* (positive) are adjusted, and only where they break one
of these rules, so `positive_data_acceptance` judges what the document promises. Invalid (negative)
cases are sent as generated; those rules are held by the services' own tests (400 on the field).

The stateful phase's valid cases are also kept on the way to a booking the run made, so that its
links reach cancel, reschedule, no-show and history with real ids: a new provider's hours are open
all week, a new service can be booked at once, a booking of it starts at a slot the document says is
offered, and a reschedule moves it whole days on. after_call remembers what the API answered for
that. Only the scenario's own answers decide a case: one that took ids from another scenario would
answer differently when hypothesis replays the scenario, and hypothesis ends the phase on that.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

from services.availability.domain.use_cases import OVERRIDE_DAYS_AHEAD
from services.booking.domain.waitlist import MAX_WINDOW as WAITLIST_WINDOW
from services.common.availability import MAX_WINDOW, MINUTES_PER_DAY, Hours, LocalInterval, ServiceRules, free_slots
from services.common.clock import LAST_YEAR

# The subject the fuzzer's token names (tests/fuzz/__main__.py, tests/integration/test_openapi_fuzz.py):
# one caller in every group, so that every lane is open and each operation reaches its function's work.
FUZZER_SUB = "fuzzer"
# Admins may call every operation; a staff token holds no customer groups (decision 0018).
FUZZER_GROUPS = ["admins", "ops"]


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A positive case made to keep the rules its operation's description states in words."""
    if _is_positive(case):
        if case.meta.phase.name == "stateful" and case.query:
            # A made-up cursor is refused (400 INVALID_CURSOR) and its page never reaches a link; the
            # other phases send them, which is where refusing them is tested.
            case.query.pop("cursor", None)
        rule = RULES.get((case.operation.method.upper(), case.operation.path))
        if rule is not None:
            rule(case)
    return case


@schemathesis.hook
def before_add_examples(context: Any, examples: list[Any]) -> None:
    """The same for the cases the examples phase makes from the document's examples (map_case does
    not see those)."""
    for case in examples:
        map_case(context, case)


def _is_positive(case: Any) -> bool:
    """Generated valid in every part: the coverage phase labels a case positive by its body even when
    it made one header invalid (`If-Match: 0`), and such a case is no valid request."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return False
    return not any(component.mode.is_negative for component in meta.components.values())


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but two kinds of "schema-valid request rejected", neither of them a valid
    request the API refused:

    - a case with an invalid part (see `_is_positive`): schemathesis calls it positive, it is not;
    - a schema-valid `cursor` refused as 400 INVALID_CURSOR. A cursor is opaque and bound to the
      query that made it (services/common/dynamodb.py): only a `nextCursor` the API handed out for
      the same query is one, which no schema can describe. Cursors are still sent as generated, so
      the functions' cursor parsing is fuzzed like any input; only `positive_data_acceptance` is
      told that refusing a made-up one is right."""
    if not isinstance(failure, RejectedPositiveData):
        return True
    if not _is_positive(case):
        return False
    if response.status_code != 400:
        return True
    if not (case.query or {}).get("cursor"):
        return True
    try:
        problem = json.loads(response.content)
    except ValueError:
        return True
    fields = {error.get("field") for error in problem.get("errors", [])}
    return not (problem.get("code") == "INVALID_CURSOR" and fields == {"query.cursor"})


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _spread(text: str, modulus: int) -> int:
    """A number in [0, modulus) drawn from generated text: varied, and the same for the same case."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % modulus


LONGEST_APPOINTMENT = timedelta(hours=12)
# A stateful run's slot search looks at the coming week, where the seeded providers have free slots,
# so that its BookFirstSlot link books one and the booking's own links get a real id and ETag.
STATEFUL_WINDOW = timedelta(days=7)


def _slot_window(case: Any) -> None:
    """`to` after `from`, at most 62 days after it (MAX_WINDOW), both in the documented years."""
    query = case.query or {}
    if case.meta.phase.name == "stateful":
        soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
        query["from"], query["to"] = soon.isoformat(), (soon + STATEFUL_WINDOW).isoformat()
        return
    start, end = _instant(query.get("from")), _instant(query.get("to"))
    if start is None or end is None or timedelta(0) < end - start <= MAX_WINDOW:
        return
    length = timedelta(seconds=1 + _spread(query["from"] + query["to"], int(MAX_WINDOW.total_seconds())))
    if (start + length).year <= LAST_YEAR:
        query["to"] = (start + length).isoformat()
    else:  # `from` near the last year: the window ends there instead (the other way, `to` could be before it)
        query["from"], query["to"] = (start - length).isoformat(), query["from"]


def _waitlist_window(case: Any) -> None:
    """`to` after `from`, at most 31 days after it (waitlist.MAX_WINDOW), in the future, and long
    enough for the service's appointment (12 hours holds any: services last at most 720 minutes)."""
    body = case.body if isinstance(case.body, dict) else {}
    start, end = _instant(body.get("from")), _instant(body.get("to"))
    if start is None or end is None:
        return
    now = datetime.now(UTC)
    if LONGEST_APPOINTMENT <= end - start <= WAITLIST_WINDOW and end > now:
        return
    room = int((WAITLIST_WINDOW - LONGEST_APPOINTMENT).total_seconds())
    length = LONGEST_APPOINTMENT + timedelta(seconds=_spread(body["from"] + body["to"], room))
    start = max(start, now + timedelta(hours=1))
    if (start + length).year > LAST_YEAR:
        start = datetime(LAST_YEAR, 12, 1, tzinfo=UTC)
    body["from"], body["to"] = start.isoformat(), (start + length).isoformat()


def _series_in_years(case: Any) -> None:
    """A series' last occurrence ends by the end of LAST_YEAR (the document's rule on `recurrence`):
    the start moved back by the series' length when it would not (the body's other fields kept)."""
    body = case.body if isinstance(case.body, dict) else {}
    recurrence, start = body.get("recurrence"), _instant(body.get("start"))
    if not isinstance(recurrence, dict) or start is None:
        return
    count, interval = recurrence.get("count"), recurrence.get("interval", 1)
    if not isinstance(count, int) or not isinstance(interval, int):
        return
    days = (count - 1) * interval * (7 if recurrence.get("frequency") == "WEEKLY" else 1)
    if (start + timedelta(days=days + 1)).year > LAST_YEAR:
        body["start"] = (start - timedelta(days=days + 2)).isoformat()


def _ordered_window(case: Any) -> None:
    """`to` not before `from` (each may be left out)."""
    query = case.query or {}
    start, end = _instant(query.get("from")), _instant(query.get("to"))
    if start is not None and end is not None and end < start:
        query["from"], query["to"] = query["to"], query["from"]


def _bookings_query(case: Any) -> None:
    """Admins and ops say whose bookings (providerId or customerId); the fuzzer is an admin."""
    _ordered_window(case)
    query = case.query if case.query is not None else {}
    if not query.get("providerId") and not query.get("customerId"):
        query["customerId"] = FUZZER_SUB
    case.query = query


def _override_date(case: Any) -> None:
    """Setting an override takes a local date from yesterday to OVERRIDE_DAYS_AHEAD days ahead. Today
    in UTC is at most a day from today in any zone, so today … today + OVERRIDE_DAYS_AHEAD - 1 (UTC)
    is in range wherever the provider is."""
    parameters = case.path_parameters or {}
    generated = str(parameters.get("date", ""))
    today = datetime.now(UTC).date()
    chosen = today + timedelta(days=_spread(generated, OVERRIDE_DAYS_AHEAD))
    try:
        if 0 <= (date.fromisoformat(generated) - today).days < OVERRIDE_DAYS_AHEAD:
            return
    except ValueError:
        pass
    parameters["date"] = chosen.isoformat()


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _intervals(intervals: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each interval ending after it starts and none overlapping: the generated times, sorted and
    paired (never more intervals than were generated, so maxItems still holds)."""
    if not intervals:
        return intervals
    points = sorted({_minutes(i["start"]) for i in intervals} | {_minutes(i["end"]) for i in intervals})
    if len(points) == 1:
        points = [points[0], points[0] + 1] if points[0] < MINUTES_PER_DAY else [points[0] - 1, points[0]]
    return [{"start": _hhmm(a), "end": _hhmm(b)} for a, b in zip(points[0::2], points[1::2], strict=False)]


# A stateful run's new provider is open all week, all day, so that its new services offer slots in
# any time zone and at any hour the run happens to start, and a slot N days after a booked one is
# free time too (see _reschedule_body).
ALWAYS_OPEN = [{"start": "00:00", "end": "24:00"}]
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _schedule_body(case: Any) -> None:
    if case.meta.phase.name == "stateful" and isinstance(case.body, dict):
        case.body["weekly"] = {day: [dict(interval) for interval in ALWAYS_OPEN] for day in WEEK}
        # No link carries the schedule's ETag to here, and a made-up one is stale (412): the change
        # applies to the current version, as an absent If-Match says.
        for name in [name for name in case.headers or {} if name.lower() == "if-match"]:
            del case.headers[name]
        return
    weekly = case.body.get("weekly") if isinstance(case.body, dict) else None
    if isinstance(weekly, dict):
        for day, intervals in weekly.items():
            weekly[day] = _intervals(intervals)


# Slot steps that divide half an hour: slots step from each local midnight, and a daylight-saving
# change moves the clock by an hour or half an hour, so a start moved by whole days is still on
# its service's steps (see _reschedule_body).
STATEFUL_STEPS = (5, 10, 15)
# Far enough for the coming week's slot search (STATEFUL_WINDOW) and a move of up to a week on.
STATEFUL_ADVANCE_DAYS = 30


def _service_body(case: Any) -> None:
    """A stateful run's new service can be booked at once (no minimum notice), soon (a short
    duration on a step of half an hour) and a few weeks ahead; its name, buffers and capacity stay
    as generated."""
    if not (case.meta.phase.name == "stateful" and isinstance(case.body, dict)):
        return
    body = case.body
    step = STATEFUL_STEPS[_spread(json.dumps(body, sort_keys=True, default=str), len(STATEFUL_STEPS))]
    body["minNoticeMinutes"] = 0
    body["slotStepMinutes"] = step
    body["durationMinutes"] = step * (1 + _spread(str(body.get("durationMinutes")), 4))
    body["maxAdvanceDays"] = max(int(body.get("maxAdvanceDays", 0)), STATEFUL_ADVANCE_DAYS)


# What this process saw the API answer (after_call), so that a stateful case about it can keep the
# document's rules: providers' zones, which providers have ALWAYS_OPEN hours, services' rules, and
# bookings' starts as the API wrote them, each under the id the API answered with, which only the
# scenario that got the answer has (from its links).
ZONES: dict[str, str] = {}
OPEN: set[str] = set()
SERVICES: dict[str, tuple[str, ServiceRules]] = {}
BOOKED: dict[str, str] = {}
MAX_MOVE_DAYS = 7


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Remember providers, schedules, services and bookings from the API's 2xx answers."""
    if not 200 <= response.status_code < 300:
        return
    try:
        answer = json.loads(response.content)
    except ValueError:
        return
    if not isinstance(answer, dict):
        return
    path = case.operation.path
    if path == "/providers" and isinstance(answer.get("timeZone"), str):
        ZONES[str(answer.get("providerId"))] = answer["timeZone"]
        if case.meta is not None and case.meta.phase.name == "stateful" and isinstance(answer.get("providerId"), str):
            _open_all_week(response, answer["providerId"])
    elif path == "/providers/{providerId}/schedule" and isinstance(answer.get("weekly"), dict):
        open_all_week = all(answer["weekly"].get(day) == ALWAYS_OPEN for day in WEEK)
        (OPEN.add if open_all_week else OPEN.discard)(str(answer.get("providerId")))
    elif path == "/providers/{providerId}/services" and isinstance(answer.get("serviceId"), str):
        try:
            SERVICES[answer["serviceId"]] = (str(answer.get("providerId")), _rules(answer))
        except (KeyError, TypeError, ValueError):
            return
    elif (
        path.startswith("/bookings")
        and isinstance(answer.get("bookingId"), str)
        and isinstance(answer.get("start"), str)
    ):
        BOOKED[answer["bookingId"]] = answer["start"]


def _open_all_week(response: Any, provider_id: str) -> None:
    """Give a provider the stateful phase just made its hours, as its owner's set-up would: open all
    week. Out of band (the same caller, the same API), so that the document's two-link chain from a
    new provider to a booking (CreateService, then CreateBooking or GetSlots and BookFirstSlot) finds
    slots, rather than only the rare scenario that also happened to put a schedule in between."""
    request = response.request
    url = str(request.url).split("/providers", 1)[0] + f"/providers/{provider_id}/schedule"
    body = json.dumps({"weekly": dict.fromkeys(WEEK, ALWAYS_OPEN)}).encode()
    headers = {"Content-Type": "application/json", "Authorization": str(request.headers.get("Authorization", ""))}
    put = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(put, timeout=30) as answer:
            if answer.status == 200:
                OPEN.add(provider_id)
    except urllib.error.URLError:
        return  # the stateful steps go on without hours: the run's booking counts show it


def _rules(service: dict[str, Any]) -> ServiceRules:
    return ServiceRules(
        duration_minutes=int(service["durationMinutes"]),
        buffer_before_minutes=int(service["bufferBeforeMinutes"]),
        buffer_after_minutes=int(service["bufferAfterMinutes"]),
        min_notice_minutes=int(service["minNoticeMinutes"]),
        max_advance_days=int(service["maxAdvanceDays"]),
        slot_step_minutes=int(service["slotStepMinutes"]),
        capacity=int(service["capacity"]),
    )


def _booking_body(case: Any) -> None:
    """A stateful booking of a service the run made, on a provider it opened all week (the
    CreateService link's), starts at a slot the document says is offered: one of the coming week's,
    by the availability engine the functions use, unless it already is one. Other bookings are sent
    as generated or linked (BookFirstSlot takes the slot a search offered)."""
    if not (case.meta.phase.name == "stateful" and isinstance(case.body, dict)):
        return
    body = case.body
    provider_id, known = body.get("providerId"), SERVICES.get(str(body.get("serviceId")))
    if known is None or known[0] != provider_id or provider_id not in OPEN or provider_id not in ZONES:
        return
    weekly = {day: (LocalInterval(0, MINUTES_PER_DAY),) for day in range(len(WEEK))}
    hours = Hours(ZoneInfo(ZONES[provider_id]), weekly, {})
    now = datetime.now(UTC)
    soon = now.replace(second=0, microsecond=0) + timedelta(hours=1)
    slots = free_slots(hours, known[1], (), soon, soon + STATEFUL_WINDOW, now, str(body["serviceId"]))
    start = _instant(body.get("start"))
    if slots and not any(slot.start == start for slot in slots):
        body["start"] = slots[_spread(str(body.get("start")), len(slots))].start.isoformat()


def _reschedule_body(case: Any) -> None:
    """A stateful reschedule of a booking the run made moves it 1 to MAX_MOVE_DAYS days on: a slot
    when its service is one the run made on a provider it opened all week; other bookings may refuse
    it (422), as the document allows."""
    if not (case.meta.phase.name == "stateful" and isinstance(case.body, dict)):
        return
    start = _instant(BOOKED.get(str((case.path_parameters or {}).get("bookingId"))))
    if start is None:
        return
    days = 1 + _spread(str(case.body.get("start")), MAX_MOVE_DAYS)
    case.body["start"] = (start + timedelta(days=days)).isoformat()


def _override_body(case: Any) -> None:
    _override_date(case)
    if isinstance(case.body, dict) and isinstance(case.body.get("intervals"), list):
        case.body["intervals"] = _intervals(case.body["intervals"])


RULES = {
    ("GET", "/providers/{providerId}/slots"): _slot_window,
    ("GET", "/bookings"): _bookings_query,
    ("GET", "/audit/events"): _ordered_window,
    ("PUT", "/providers/{providerId}/schedule"): _schedule_body,
    ("PUT", "/providers/{providerId}/overrides/{date}"): _override_body,
    ("POST", "/providers/{providerId}/services"): _service_body,
    ("POST", "/waitlist"): _waitlist_window,
    ("POST", "/bookings"): _series_in_years,
}

# Rules about ids a link feeds: applied just before the request is sent (before_call), since
# schemathesis applies a link's values to a case after map_case has seen it.
LINKED_RULES = {
    ("POST", "/bookings"): _booking_body,
    ("POST", "/bookings/{bookingId}/reschedule"): _reschedule_body,
}


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    """A positive stateful case about ids a link fed, kept to the rules of what those ids name."""
    if _is_positive(case) and case.meta.phase.name == "stateful":
        rule = LINKED_RULES.get((case.operation.method.upper(), case.operation.path))
        if rule is not None:
            rule(case)
