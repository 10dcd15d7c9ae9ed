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
from services.availability.http_models import OverrideIn
from services.common.availability import MAX_WINDOW
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
