"""Every availability endpoint through the local stack, with its authorization rules."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from local.stack import LocalStack
from tests.integration.conftest import call, eventually, token

BERLIN = ZoneInfo("Europe/Berlin")
MORNINGS = {day: [{"start": "09:00", "end": "12:00"}] for day in ("mon", "tue", "wed", "thu", "fri")}


def next_monday() -> date:
    today = datetime.now(BERLIN).date()
    return today + timedelta(days=7 - today.weekday() + 7)  # the Monday after next: clear of min notice


@pytest.fixture(scope="module")
def owner(stack: LocalStack) -> str:
    return token(stack, "dr-berlin", ["providers"])


@pytest.fixture(scope="module")
def provider(stack: LocalStack, owner: str) -> dict[str, Any]:
    status, headers, body = call(
        stack, "POST", "/providers", token=owner, body={"name": "Dr. Berlin", "timeZone": "Europe/Berlin"}
    )
    assert status == 201, body
    assert headers["Location"] == f"/providers/{body['providerId']}"
    return body


@pytest.fixture(scope="module")
def service(stack: LocalStack, owner: str, provider: dict[str, Any]) -> dict[str, Any]:
    status, _, schedule = call(
        stack, "PUT", f"/providers/{provider['providerId']}/schedule", token=owner, body={"weekly": MORNINGS}
    )
    assert status == 200, schedule
    status, _, body = call(
        stack,
        "POST",
        f"/providers/{provider['providerId']}/services",
        token=owner,
        body={"name": "Consultation", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0},
    )
    assert status == 201, body
    return body


def slots(
    stack: LocalStack, provider_id: str, service_id: str, start: datetime, end: datetime, who: str
) -> list[dict[str, Any]]:
    query = f"serviceId={service_id}&from={quote(start.isoformat())}&to={quote(end.isoformat())}"
    status, _, body = call(stack, "GET", f"/providers/{provider_id}/slots?{query}", token=who)
    assert status == 200, body
    return list(body["slots"])


def test_a_provider_user_creates_its_provider_and_everyone_reads_it(
    stack: LocalStack, provider: dict[str, Any]
) -> None:
    assert provider["ownerSub"] == "dr-berlin" and provider["timeZone"] == "Europe/Berlin" and provider["version"] == 1
    customer = token(stack, "cust-1", ["customers"])
    status, headers, body = call(stack, "GET", f"/providers/{provider['providerId']}", token=customer)
    # the owner's subject is for admins, ops and the owner: a customer reads the rest
    assert (status, body) == (200, {key: value for key, value in provider.items() if key != "ownerSub"})
    for staff in (["admins"], ["ops"]):
        seen = call(stack, "GET", f"/providers/{provider['providerId']}", token=token(stack, "staff-1", staff))[2]
        assert seen == provider
    assert headers["ETag"] == '"1"'


def test_customers_and_ops_cannot_create_providers(stack: LocalStack) -> None:
    for groups in (["customers"], ["ops"]):
        status, _, body = call(
            stack, "POST", "/providers", token=token(stack, "x", groups), body={"name": "X", "timeZone": "UTC"}
        )
        assert (status, body["code"]) == (403, "FORBIDDEN")


def test_only_admins_create_providers_for_someone_else(stack: LocalStack) -> None:
    request = {"name": "Delegated", "timeZone": "Asia/Kolkata", "ownerSub": "someone"}
    assert call(stack, "POST", "/providers", token=token(stack, "p", ["providers"]), body=request)[0] == 403
    status, _, body = call(stack, "POST", "/providers", token=token(stack, "root", ["admins"]), body=request)
    assert (status, body["ownerSub"]) == (201, "someone")


def test_listing_pages_through_every_provider_once(stack: LocalStack, provider: dict[str, Any]) -> None:
    reader = token(stack, "cust-2", ["customers"])

    def every_page() -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            path = "/providers?limit=2" + (f"&cursor={quote(cursor)}" if cursor else "")
            status, _, page = call(stack, "GET", path, token=reader)
            assert status == 200 and len(page["items"]) <= 2
            seen += [item["providerId"] for item in page["items"]]
            cursor = page.get("nextCursor")
            if not cursor:
                return seen

    # The list reads an index, which DynamoDB keeps eventually consistent: a new provider shows soon.
    seen = eventually(lambda: pages if provider["providerId"] in (pages := every_page()) else [])
    assert len(seen) == len(set(seen)) >= 4  # three demo providers and ours
    assert provider["providerId"] in seen


def test_schedule_versions_guard_against_lost_updates(
    stack: LocalStack, owner: str, provider: dict[str, Any], service: dict[str, Any]
) -> None:
    path = f"/providers/{provider['providerId']}/schedule"
    status, headers, current = call(stack, "GET", path, token=owner)
    assert status == 200 and current["weekly"]["mon"] == [{"start": "09:00", "end": "12:00"}]
    version = current["version"]
    assert headers["ETag"] == f'"{version}"'
    # Two admins read version N; the first write wins, the second is refused with 412.
    status, headers, updated = call(
        stack, "PUT", path, token=owner, body={"weekly": MORNINGS}, headers={"If-Match": f'"{version}"'}
    )
    assert (status, updated["version"], headers["ETag"]) == (200, version + 1, f'"{version + 1}"')
    status, _, refused = call(
        stack, "PUT", path, token=owner, body={"weekly": {}}, headers={"If-Match": f'"{version}"'}
    )
    assert (status, refused["code"]) == (412, "PRECONDITION_FAILED")
    assert call(stack, "GET", path, token=owner)[2]["weekly"]["mon"] == MORNINGS["mon"]  # nothing lost


def test_providers_cannot_touch_other_providers(stack: LocalStack, provider: dict[str, Any]) -> None:
    intruder = token(stack, "dr-elsewhere", ["providers"])
    base = f"/providers/{provider['providerId']}"
    attempts = [
        ("PUT", f"{base}/schedule", {"weekly": {}}),
        ("PUT", f"{base}/overrides/{next_monday().isoformat()}", {"intervals": []}),
        ("DELETE", f"{base}/overrides/{next_monday().isoformat()}", None),
        ("POST", f"{base}/services", {"name": "Sneaky", "durationMinutes": 30}),
    ]
    for method, path, body in attempts:
        status, _, problem = call(stack, method, path, token=intruder, body=body)
        assert (status, problem["code"]) == (403, "FORBIDDEN"), (method, path)
    customer = token(stack, "cust-3", ["customers"])
    assert call(stack, "PUT", f"{base}/schedule", token=customer, body={"weekly": {}})[0] == 403


def test_admins_manage_any_provider(stack: LocalStack, provider: dict[str, Any]) -> None:
    admin = token(stack, "root", ["admins"])
    status, _, body = call(
        stack,
        "POST",
        f"/providers/{provider['providerId']}/services",
        token=admin,
        body={"name": "Admin-made", "durationMinutes": 60},
    )
    assert status == 201 and body["capacity"] == 1 and body["slotStepMinutes"] == 15


def test_services_are_listed_for_everyone(stack: LocalStack, provider: dict[str, Any], service: dict[str, Any]) -> None:
    status, _, body = call(
        stack, "GET", f"/providers/{provider['providerId']}/services", token=token(stack, "c", ["customers"])
    )
    assert status == 200 and service in body["items"] and body["nextCursor"] is None


def test_slots_follow_the_weekly_hours_in_the_providers_zone(
    stack: LocalStack, provider: dict[str, Any], service: dict[str, Any]
) -> None:
    monday = next_monday()
    start = datetime.combine(monday, datetime.min.time(), BERLIN)
    found = slots(
        stack,
        provider["providerId"],
        service["serviceId"],
        start,
        start + timedelta(days=7),
        token(stack, "c", ["customers"]),
    )
    # Five mornings of six half-hour slots each.
    assert len(found) == 30
    for slot in found:
        local = datetime.fromisoformat(slot["start"])
        assert local.utcoffset() == local.astimezone(BERLIN).utcoffset()
        assert "09:00" <= local.strftime("%H:%M") <= "11:30" and slot["remaining"] == 1


def test_the_window_may_carry_any_offset(stack: LocalStack, provider: dict[str, Any], service: dict[str, Any]) -> None:
    monday = next_monday()
    berlin_nine = datetime.combine(monday, datetime.min.time(), BERLIN).replace(hour=9)
    new_york_view = berlin_nine.astimezone(ZoneInfo("America/New_York"))
    ops = token(stack, "o", ["ops"])
    found = slots(
        stack, provider["providerId"], service["serviceId"], new_york_view, new_york_view + timedelta(hours=1), ops
    )
    assert [s["start"] for s in found] == [berlin_nine.isoformat(), (berlin_nine + timedelta(minutes=30)).isoformat()]


def test_overrides_replace_close_and_restore_a_day(
    stack: LocalStack, owner: str, provider: dict[str, Any], service: dict[str, Any]
) -> None:
    day = next_monday() + timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), BERLIN)
    window = (start, start + timedelta(days=1))
    path = f"/providers/{provider['providerId']}/overrides/{day.isoformat()}"

    def day_slots() -> list[str]:
        return [s["start"][11:16] for s in slots(stack, provider["providerId"], service["serviceId"], *window, owner)]

    assert len(day_slots()) == 6
    status, headers, override = call(stack, "PUT", path, token=owner, body={"intervals": []})
    assert (status, override["intervals"], headers["ETag"]) == (200, [], '"1"')
    assert day_slots() == []  # closed
    status, _, override = call(
        stack,
        "PUT",
        path,
        token=owner,
        body={"intervals": [{"start": "14:00", "end": "15:00"}]},
        headers={"If-Match": '"1"'},
    )
    assert (status, override["version"]) == (200, 2)
    assert day_slots() == ["14:00", "14:30"]
    schedule = call(stack, "GET", f"/providers/{provider['providerId']}/schedule", token=owner)[2]
    assert {
        "providerId": provider["providerId"],
        "date": day.isoformat(),
        "intervals": [{"start": "14:00", "end": "15:00"}],
        "version": 2,
    } in schedule["overrides"]
    assert call(stack, "DELETE", path, token=owner, headers={"If-Match": '"1"'})[0] == 412  # stale
    assert call(stack, "DELETE", path, token=owner)[0] == 204
    assert len(day_slots()) == 6  # weekly hours again
    status, _, problem = call(stack, "DELETE", path, token=owner)
    assert (status, problem["code"]) == (404, "NOT_FOUND")


def test_unknown_provider_and_service_are_404(stack: LocalStack, provider: dict[str, Any]) -> None:
    reader = token(stack, "c", ["customers"])
    missing = "prv_" + "0" * 32
    assert call(stack, "GET", f"/providers/{missing}", token=reader)[0] == 404
    query = f"serviceId=svc_{'0' * 32}&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"
    status, _, problem = call(stack, "GET", f"/providers/{provider['providerId']}/slots?{query}", token=reader)
    assert (status, problem["code"]) == (404, "NOT_FOUND")


def test_demo_providers_offer_slots_over_62_days(stack: LocalStack) -> None:
    reader = token(stack, "c", ["customers"])
    providers = call(stack, "GET", "/providers?limit=100", token=token(stack, "o", ["ops"]))[2]["items"]
    demo = [p for p in providers if p.get("ownerSub") == "demo-provider"]  # ops see whose they are
    assert len(demo) == 3
    start = datetime.now(UTC)
    for provider in demo:
        for service in call(stack, "GET", f"/providers/{provider['providerId']}/services", token=reader)[2]["items"]:
            found = slots(
                stack, provider["providerId"], service["serviceId"], start, start + timedelta(days=62), reader
            )
            # about 43 working days in 62, several slots each; the service's booking window caps nothing here
            assert len(found) > 100, (provider["name"], service["name"], len(found))
            last = datetime.fromisoformat(found[-1]["start"])
            assert last - start > timedelta(days=55)


def test_setting_and_removing_one_override_at_once_never_answers_500(
    stack: LocalStack, owner: str, provider: dict[str, Any]
) -> None:
    """A PUT without If-Match used to read its item back to learn its version; a DELETE between the
    two made that a 500 (found by `make load`). Now it writes at the version it read, and knows it."""
    day = next_monday() + timedelta(days=9)
    path = f"/providers/{provider['providerId']}/overrides/{day.isoformat()}"

    hours = {"intervals": [{"start": "10:00", "end": "11:00"}]}

    def put(_: int) -> tuple[int, Any]:
        answer = call(stack, "PUT", path, token=owner, body=hours)
        return answer[0], answer[2]

    def delete(_: int) -> tuple[int, Any]:
        answer = call(stack, "DELETE", path, token=owner)
        return answer[0], answer[2]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: put(n) if n % 2 else delete(n), range(40)))
    statuses = {status for status, _ in answers}
    # 503 (with Retry-After) only if eight writers at once kept beating one for ten rounds
    assert statuses <= {200, 204, 404, 503} and 500 not in statuses, answers
    assert any(status == 200 for status, _ in answers)
    # and each 200 says the version it made
    versions = [body["version"] for status, body in answers if status == 200]
    assert all(isinstance(v, int) and v >= 1 for v in versions)
