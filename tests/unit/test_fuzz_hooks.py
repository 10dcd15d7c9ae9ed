"""The fuzzer's hooks (tests/fuzz/hooks.py) make valid cases keep the rules the document states in
words, judged by the functions' own validation, and leave invalid cases as generated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import RejectedPositiveData

from services.availability.domain.use_cases import OVERRIDE_DAYS_AHEAD, OVERRIDE_DAYS_BACK
from services.availability.http_models import OverrideIn, ScheduleIn, ServiceIn
from services.common.availability import MAX_WINDOW, Hours, LocalInterval, ServiceRules, free_slots, why_not
from services.common.clock import SupportedInstant
from tests.fuzz import hooks

POSITIVE = SimpleNamespace(is_positive=True, is_negative=False)
NEGATIVE = SimpleNamespace(is_positive=False, is_negative=True)


def case(
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    path_parameters: dict[str, Any] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    mode: Any = POSITIVE,
    parts: dict[str, Any] | None = None,
    phase: str = "fuzzing",
) -> Any:
    meta = SimpleNamespace(
        generation=SimpleNamespace(mode=mode),
        components={location: SimpleNamespace(mode=m) for location, m in (parts or {}).items()},
        phase=SimpleNamespace(name=phase),
    )
    return SimpleNamespace(
        operation=SimpleNamespace(method=method, path=path),
        query=query,
        path_parameters=path_parameters,
        headers=headers,
        body=body,
        meta=meta,
    )


INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


def written(moment: datetime, offset_minutes: int) -> str:
    """An instant as a client writes it, in the documented years of its own offset."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    year = min(max(local.year, 2000), 2099)
    return local.replace(year=year).isoformat()


@given(INSTANTS, OFFSETS, INSTANTS, OFFSETS)
def test_a_valid_slot_search_gets_a_window_the_function_takes(a: datetime, x: int, b: datetime, y: int) -> None:
    query = {"serviceId": "svc_" + "0" * 32, "from": written(a, x), "to": written(b, y)}
    hooks.map_case(None, case("GET", "/providers/{providerId}/slots", query=query))
    start, end = (TypeAdapter(SupportedInstant).validate_python(query[k]) for k in ("from", "to"))
    assert timedelta(0) < end - start <= MAX_WINDOW


def test_a_stateful_slot_search_looks_at_the_coming_week() -> None:
    query = {"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"}
    hooks.map_case(None, case("GET", "/providers/{providerId}/slots", query=query, phase="stateful"))
    start = datetime.fromisoformat(query["from"])
    assert timedelta(0) < start - datetime.now(UTC) <= timedelta(hours=1)
    assert datetime.fromisoformat(query["to"]) - start == hooks.STATEFUL_WINDOW


def test_an_invalid_case_is_sent_as_generated() -> None:
    query = {"from": "2050-01-01T00:00:00Z", "to": "2010-01-01T00:00:00Z"}
    hooks.map_case(None, case("GET", "/audit/events", query=dict(query), mode=NEGATIVE))
    mixed = case("GET", "/audit/events", query=dict(query), parts={"query": POSITIVE, "header": NEGATIVE})
    hooks.map_case(None, mixed)
    assert mixed.query == query


def test_a_valid_window_of_bookings_or_events_is_put_in_order() -> None:
    query = {"from": "2050-01-01T00:00:00Z", "to": "2010-01-01T00:00:00Z", "entityType": "Booking"}
    hooks.map_case(None, case("GET", "/audit/events", query=query))
    assert (query["from"], query["to"]) == ("2010-01-01T00:00:00Z", "2050-01-01T00:00:00Z")


def test_the_admin_fuzzer_lists_bookings_by_someone() -> None:
    listed = case("GET", "/bookings", query=None)
    hooks.map_case(None, listed)
    assert listed.query == {"customerId": hooks.FUZZER_SUB}
    named = case("GET", "/bookings", query={"providerId": "prv_" + "0" * 32})
    hooks.map_case(None, named)
    assert named.query == {"providerId": "prv_" + "0" * 32}


@given(st.dates(min_value=datetime(1, 1, 1).date(), max_value=datetime(9999, 12, 31).date()))
def test_a_valid_override_date_is_in_range_wherever_the_provider_is(generated: Any) -> None:
    parameters = {"providerId": "prv_" + "0" * 32, "date": generated.isoformat()}
    hooks.map_case(None, case("PUT", "/providers/{providerId}/overrides/{date}", path_parameters=parameters, body={}))
    chosen = datetime.fromisoformat(parameters["date"]).date()
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "UTC"):  # the earliest and latest zones there are
        today = datetime.now(ZoneInfo(zone)).date()
        assert today - timedelta(days=OVERRIDE_DAYS_BACK) <= chosen <= today + timedelta(days=OVERRIDE_DAYS_AHEAD)


TIMES = st.integers(min_value=0, max_value=24 * 60).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")
INTERVALS = st.lists(st.fixed_dictionaries({"start": TIMES, "end": TIMES}), max_size=12)


@given(INTERVALS)
def test_valid_intervals_become_intervals_the_function_takes(intervals: list[dict[str, str]]) -> None:
    body = {"intervals": [dict(i) for i in intervals]}
    parameters = {"date": datetime.now(UTC).date().isoformat()}
    hooks.map_case(None, case("PUT", "/providers/{providerId}/overrides/{date}", path_parameters=parameters, body=body))
    OverrideIn.model_validate(body)  # end after start, none overlapping: the function's own rules
    assert len(body["intervals"]) <= len(intervals)
    weekly = {"weekly": {"mon": [dict(i) for i in intervals]}}
    hooks.map_case(None, case("PUT", "/providers/{providerId}/schedule", body=weekly))
    OverrideIn.model_validate({"intervals": weekly["weekly"]["mon"]})


def response(status: int, body: dict[str, Any]) -> Any:
    return SimpleNamespace(status_code=status, content=json.dumps(body).encode())


INVALID_CURSOR = {"code": "INVALID_CURSOR", "errors": [{"field": "query.cursor", "message": "is not a cursor"}]}


def rejected() -> RejectedPositiveData:
    return RejectedPositiveData(operation="GET /providers", message="", status_code=400, allowed_statuses=["2xx"])


def test_only_a_made_up_cursor_refused_as_one_is_forgiven() -> None:
    listing = case("GET", "/providers", query={"cursor": "made-up"})
    assert not hooks.filter_failure(None, rejected(), listing, response(400, INVALID_CURSOR))
    other = {"code": "VALIDATION_FAILED", "errors": [{"field": "query.limit", "message": "too big"}]}
    assert hooks.filter_failure(None, rejected(), listing, response(400, other))
    assert hooks.filter_failure(None, rejected(), case("GET", "/providers", query={}), response(400, INVALID_CURSOR))
    accepted = AcceptedNegativeData(operation="GET /providers", message="", status_code=200, expected_statuses=["400"])
    assert hooks.filter_failure(None, accepted, listing, response(200, {}))


def test_a_case_with_an_invalid_part_is_not_judged_as_a_valid_one() -> None:
    mixed = case("PUT", "/providers/{providerId}/schedule", parts={"body": POSITIVE, "header": NEGATIVE})
    refused = {"code": "VALIDATION_FAILED", "errors": [{"field": "header.If-Match", "message": "no"}]}
    assert not hooks.filter_failure(None, rejected(), mixed, response(400, refused))
    valid = case("PUT", "/providers/{providerId}/schedule", parts={"body": POSITIVE, "header": POSITIVE})
    assert hooks.filter_failure(None, rejected(), valid, response(400, refused))


def test_a_stateful_valid_case_sends_no_made_up_cursor_and_the_other_phases_do() -> None:
    stateful = case("GET", "/providers", query={"cursor": "made-up", "limit": 5}, phase="stateful")
    hooks.map_case(None, stateful)
    assert stateful.query == {"limit": 5}
    fuzzing = case("GET", "/providers", query={"cursor": "made-up", "limit": 5})
    hooks.map_case(None, fuzzing)
    assert fuzzing.query == {"cursor": "made-up", "limit": 5}


def test_a_stateful_schedule_is_open_all_week_at_the_current_version() -> None:
    body = {"weekly": {"mon": [{"start": "09:00", "end": "10:00"}]}}
    put = case("PUT", "/providers/{providerId}/schedule", body=body, phase="stateful")
    put.headers = {"If-Match": '"7"'}
    hooks.map_case(None, put)
    weekly = ScheduleIn.model_validate(put.body).weekly.by_weekday()
    assert weekly == {day: (LocalInterval(0, 24 * 60),) for day in range(7)}
    assert put.headers == {}
    fuzzing = case(
        "PUT", "/providers/{providerId}/schedule", body={"weekly": {"mon": [{"start": "09:00", "end": "10:00"}]}}
    )
    fuzzing.headers = {"If-Match": '"7"'}
    hooks.map_case(None, fuzzing)
    assert fuzzing.body == {"weekly": {"mon": [{"start": "09:00", "end": "10:00"}]}} and fuzzing.headers == {
        "If-Match": '"7"'
    }


SERVICES = st.fixed_dictionaries(
    {"name": st.just("Cut"), "durationMinutes": st.integers(5, 720)},
    optional={
        "bufferBeforeMinutes": st.integers(0, 240),
        "bufferAfterMinutes": st.integers(0, 240),
        "minNoticeMinutes": st.integers(0, 43_200),
        "maxAdvanceDays": st.integers(1, 365),
        "slotStepMinutes": st.integers(5, 720),
        "capacity": st.integers(1, 100),
    },
)


@given(SERVICES)
def test_a_stateful_service_can_be_booked_at_once_and_soon(body: dict[str, Any]) -> None:
    generated = dict(body)
    hooks.map_case(None, case("POST", "/providers/{providerId}/services", body=body, phase="stateful"))
    service = ServiceIn.model_validate(body)  # still a service the function takes
    assert service.minNoticeMinutes == 0 and service.slotStepMinutes in hooks.STATEFUL_STEPS
    assert service.durationMinutes % service.slotStepMinutes == 0 and service.durationMinutes <= 60
    assert service.maxAdvanceDays >= hooks.STATEFUL_ADVANCE_DAYS
    kept = ("name", "bufferBeforeMinutes", "bufferAfterMinutes", "capacity")
    assert {k: body.get(k) for k in kept} == {k: generated.get(k) for k in kept}
    fuzzing = dict(generated)
    hooks.map_case(None, case("POST", "/providers/{providerId}/services", body=fuzzing))
    assert fuzzing == generated


ZONES = st.sampled_from(
    [
        "UTC",
        "Asia/Kathmandu",
        "Pacific/Chatham",
        "Australia/Lord_Howe",
        "America/St_Johns",
        "Europe/Berlin",
        "America/New_York",
        "Pacific/Kiritimati",
        "Etc/GMT+12",
        "Australia/Eucla",
    ]
)
NOWS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC))


@given(SERVICES, ZONES, NOWS, st.text(max_size=30))
def test_a_stateful_reschedule_moves_a_booking_to_a_slot_of_its_stateful_service(
    body: dict[str, Any], zone: str, now: datetime, generated_start: str
) -> None:
    # Given a provider and a service as a stateful run makes them, and a booking of the first slot
    # its coming-week search offers (the BookFirstSlot link), written as the API writes it
    hooks.map_case(None, case("POST", "/providers/{providerId}/services", body=body, phase="stateful"))
    service = ServiceIn.model_validate(body)
    rules = ServiceRules(
        service.durationMinutes,
        service.bufferBeforeMinutes,
        service.bufferAfterMinutes,
        service.minNoticeMinutes,
        service.maxAdvanceDays,
        service.slotStepMinutes,
        service.capacity,
    )
    weekly = {day: (LocalInterval(0, 24 * 60),) for day in range(7)}
    hours = Hours(ZoneInfo(zone), weekly, {})
    soon = now.replace(second=0, microsecond=0) + timedelta(hours=1)
    first = free_slots(hours, rules, (), soon, soon + hooks.STATEFUL_WINDOW, now, "svc")[0]
    booking_id = "bkg_" + "1" * 48
    created = SimpleNamespace(
        status_code=201, content=json.dumps({"bookingId": booking_id, "start": first.start.isoformat()}).encode()
    )
    hooks.after_call(None, case("POST", "/bookings"), created)
    # When the run reschedules it
    move = case(
        "POST",
        "/bookings/{bookingId}/reschedule",
        path_parameters={"bookingId": booking_id},
        body={"start": generated_start},
        phase="stateful",
    )
    hooks.before_call(None, move)  # after the link fed the booking id
    # Then the new start is whole days on, and a slot the engine offers with the booking's own time aside
    start = TypeAdapter(SupportedInstant).validate_python(move.body["start"])
    assert timedelta(days=1) <= start - first.start <= timedelta(days=hooks.MAX_MOVE_DAYS)
    assert why_not(hours, rules, (), start, now, "svc") is None


def test_only_a_booking_the_api_answered_with_is_remembered(monkeypatch: Any) -> None:
    monkeypatch.setattr(hooks, "BOOKED", {})
    refused = response(404, {"bookingId": "bkg_" + "2" * 48, "start": "2030-01-01T10:00:00Z"})
    hooks.after_call(None, case("POST", "/bookings/{bookingId}/cancel"), refused)
    hooks.after_call(None, case("GET", "/providers"), response(200, {"items": []}))
    assert hooks.BOOKED == {}
    # With none made yet, a stateful change to a made-up booking is sent as generated
    unknown = case(
        "POST",
        "/bookings/{bookingId}/reschedule",
        path_parameters={"bookingId": "bkg_" + "3" * 48},
        body={"start": "2030-01-01T10:00:00Z"},
        phase="stateful",
    )
    hooks.before_call(None, unknown)
    assert unknown.path_parameters == {"bookingId": "bkg_" + "3" * 48}
    assert unknown.body == {"start": "2030-01-01T10:00:00Z"}


def a_run_that_saw_nothing(monkeypatch: Any) -> None:
    for name in ("ZONES", "SERVICES", "BOOKED"):
        monkeypatch.setattr(hooks, name, {})
    monkeypatch.setattr(hooks, "OPEN", set())


def answered(method: str, path: str, status: int, body: dict[str, Any]) -> None:
    hooks.after_call(None, case(method, path), response(status, body))


@given(SERVICES, ZONES, st.text(max_size=30))
def test_a_stateful_booking_of_a_service_the_run_made_starts_at_an_offered_slot(
    body: dict[str, Any], zone: str, generated_start: str
) -> None:
    # Given a provider the run made, opened all week, and a service made as the stateful phase makes them
    provider_id, service_id = "prv_" + "a" * 32, "svc_" + "b" * 32
    answered("POST", "/providers", 201, {"providerId": provider_id, "timeZone": zone})
    weekly = {day: list(hooks.ALWAYS_OPEN) for day in hooks.WEEK}
    answered("PUT", "/providers/{providerId}/schedule", 200, {"providerId": provider_id, "weekly": weekly})
    hooks.map_case(None, case("POST", "/providers/{providerId}/services", body=body, phase="stateful"))
    service = {"serviceId": service_id, "providerId": provider_id, "bufferBeforeMinutes": 0, "bufferAfterMinutes": 0}
    service |= {"maxAdvanceDays": 90, "capacity": 1} | body
    answered("POST", "/providers/{providerId}/services", 201, service)
    # When the run books it with a generated start (the CreateService → CreateBooking link)
    booking = {"providerId": provider_id, "serviceId": service_id, "start": generated_start}
    hooks.before_call(None, case("POST", "/bookings", body=booking, phase="stateful"))
    # Then the start is a slot the functions' engine offers, and a start that is one is kept
    start = TypeAdapter(SupportedInstant).validate_python(booking["start"])
    hours = Hours(ZoneInfo(zone), {day: (LocalInterval(0, 24 * 60),) for day in range(7)}, {})
    rules = hooks._rules(service)
    now = datetime.now(UTC)
    assert why_not(hours, rules, (), start, now, service_id) is None
    assert timedelta(0) < start - now <= hooks.STATEFUL_WINDOW + timedelta(hours=1)
    offered = booking["start"]
    hooks.before_call(None, case("POST", "/bookings", body=booking, phase="stateful"))
    assert booking["start"] == offered


def half_hour_service(provider_id: str, service_id: str, max_advance_days: int) -> dict[str, Any]:
    """A service as the API answers one: 30 minutes on a 15-minute step, no buffers, no notice."""
    return {
        "serviceId": service_id,
        "providerId": provider_id,
        "durationMinutes": 30,
        "bufferBeforeMinutes": 0,
        "bufferAfterMinutes": 0,
        "minNoticeMinutes": 0,
        "maxAdvanceDays": max_advance_days,
        "slotStepMinutes": 15,
        "capacity": 1,
    }


def test_a_booking_on_a_provider_not_open_all_week_is_sent_as_generated_or_linked(monkeypatch: Any) -> None:
    a_run_that_saw_nothing(monkeypatch)
    provider_id, service_id = "prv_" + "c" * 32, "svc_" + "d" * 32
    answered("POST", "/providers", 201, {"providerId": provider_id, "timeZone": "UTC"})
    answered("POST", "/providers/{providerId}/services", 201, half_hour_service(provider_id, service_id, 90))
    weekly = {"mon": [{"start": "09:00", "end": "17:00"}]}
    answered("PUT", "/providers/{providerId}/schedule", 200, {"providerId": provider_id, "weekly": weekly})
    booking = {"providerId": provider_id, "serviceId": service_id, "start": "2030-01-01T10:00:07Z"}
    hooks.before_call(None, case("POST", "/bookings", body=booking, phase="stateful"))
    assert booking["start"] == "2030-01-01T10:00:07Z"  # nothing open all week to book instead


def test_a_stateful_booking_takes_no_ids_from_another_scenario(monkeypatch: Any) -> None:
    """Only a scenario's own answers decide its cases: hypothesis replays scenarios, and a case that took
    another scenario's service would answer differently then (hypothesis ends the phase on that)."""
    a_run_that_saw_nothing(monkeypatch)
    provider_id, service_id = "prv_" + "e" * 32, "svc_" + "f" * 32
    answered("POST", "/providers", 201, {"providerId": provider_id, "timeZone": "Asia/Kathmandu"})
    weekly = {day: list(hooks.ALWAYS_OPEN) for day in hooks.WEEK}
    answered("PUT", "/providers/{providerId}/schedule", 200, {"providerId": provider_id, "weekly": weekly})
    answered("POST", "/providers/{providerId}/services", 201, half_hour_service(provider_id, service_id, 30))
    # A seeded provider's service (the BookFirstSlot link's, or a scenario's first step) is sent as it is
    seeded = {"providerId": "prv_" + "3" * 32, "serviceId": "svc_" + "2" * 32, "start": "2030-01-01T10:00:00Z"}
    kept = dict(seeded)
    hooks.map_case(None, case("POST", "/bookings", body=kept, phase="stateful"))
    assert kept == seeded
    # and a service of the run named with another provider too
    mismatched = {"providerId": "prv_" + "3" * 32, "serviceId": service_id, "start": "2030-01-01T10:00:00Z"}
    sent = dict(mismatched)
    hooks.map_case(None, case("POST", "/bookings", body=sent, phase="stateful"))
    assert sent == mismatched
    # A change to a booking the run never saw keeps its made-up id
    change = case(
        "POST", "/bookings/{bookingId}/cancel", path_parameters={"bookingId": "bkg_" + "f" * 48}, phase="stateful"
    )
    hooks.map_case(None, change)
    assert change.path_parameters == {"bookingId": "bkg_" + "f" * 48}
