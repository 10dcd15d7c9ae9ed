"""Locust scenarios for Appointments, against the local stack or a deployed stage (`make load`).

- `CustomerUser`: searches slots (~60 %), books one (~25 %), cancels one of its bookings (~10 %),
  reschedules one (~5 %), thinking 1-5 s between actions;
- `ProviderUser`: looks at a day of its providers' bookings and edits their schedule (an override on
  a day far ahead, then removes it);
- `ContentionUser` (`SCENARIO=contention`): everyone goes for the same few slots of one provider.

409 (taken, or a conflicting change) and 422 (no longer a slot) are expected outcomes when users
race, so they count as successes, under their own names in the report. 5xx and anything unexpected
are failures. The providers and services come from the fixture `loadtests/load.py` creates
(`LOAD_FIXTURE`); tokens come from the local stack's mint, or from `LOAD_*_TOKEN` for a deployed stage.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from locust import HttpUser, between, events, task

from loadtests.load import stage_token

FIXTURE: dict[str, Any] = json.loads(open(os.environ["LOAD_FIXTURE"], encoding="utf-8").read())  # noqa: SIM115
EXPECTED_RACES = {409, 422}
STATUSES: Counter[str] = Counter()  # "<name> <status>" → count, written beside the report
_STATUS_LOCK = threading.Lock()


@events.request.add_listener
def count_status(name: str, response: Any, **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    with _STATUS_LOCK:
        STATUSES[f"{name} {status}"] += 1


@events.quitting.add_listener
def write_statuses(**_: Any) -> None:
    path = os.environ.get("LOAD_STATUSES")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(dict(STATUSES), out, indent=1, sort_keys=True)


def token(host: str, sub: str, groups: list[str]) -> str:
    """A token for `sub`: the deployed stage's test user's (`LOAD_<GROUP>_TOKEN`), or the local mint's."""
    return stage_token(host, sub, groups[0])


def window(days_ahead: int, days: int = 1) -> str:
    start = (datetime.now(UTC) + timedelta(days=days_ahead)).replace(hour=0, minute=0, second=0, microsecond=0)
    return f"from={quote(start.isoformat())}&to={quote((start + timedelta(days=days)).isoformat())}"


class _ApiUser(HttpUser):
    abstract = True
    groups: ClassVar[list[str]] = []

    def on_start(self) -> None:
        self.sub = f"load-{type(self).__name__.lower()}-{random.getrandbits(40):010x}"
        self.client.headers["Authorization"] = f"Bearer {token(str(self.host), self.sub, self.groups)}"

    def expect(self, method: str, path: str, name: str, ok: set[int], **kwargs: Any) -> Any:
        """One request; `ok` statuses are successes, expected races too (named apart), the rest failures."""
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as response:
            if response.status_code in ok:
                response.success()
                return response.json() if response.content else None
            if response.status_code in EXPECTED_RACES:
                response.success()
                response.request_meta["name"] = f"{name} [{response.status_code}]"
                return None
            response.failure(f"{response.status_code}: {response.text[:200]}")
            return None


class CustomerUser(_ApiUser):
    weight = 8
    wait_time = between(1, 5)
    groups: ClassVar[list[str]] = ["customers"]

    def on_start(self) -> None:
        super().on_start()
        self.bookings: list[str] = []

    def pick(self) -> tuple[dict[str, Any], dict[str, Any]]:
        provider = random.choice(FIXTURE["providers"])
        return provider, random.choice(provider["services"])

    def slots(self, provider: dict[str, Any], service: dict[str, Any], days_ahead: int) -> list[dict[str, Any]]:
        path = f"/providers/{provider['providerId']}/slots?serviceId={service['serviceId']}&{window(days_ahead)}"
        found = self.expect("GET", path, "GET /providers/{id}/slots", {200})
        return list(found["slots"]) if found else []

    @task(60)
    def search(self) -> None:
        provider, service = self.pick()
        self.slots(provider, service, random.randint(1, 7))

    @task(25)
    def book(self) -> None:
        provider, service = self.pick()
        offered = self.slots(provider, service, random.randint(1, 7))
        if not offered:
            return
        body = {
            "providerId": provider["providerId"],
            "serviceId": service["serviceId"],
            "start": random.choice(offered)["start"],
        }
        made = self.expect("POST", "/bookings", "POST /bookings", {201}, json=body)
        if made:
            self.bookings.append(made["bookingId"])

    @task(10)
    def cancel(self) -> None:
        if self.bookings:
            booking = self.bookings.pop(random.randrange(len(self.bookings)))
            self.expect("POST", f"/bookings/{booking}/cancel", "POST /bookings/{id}/cancel", {200}, json={})

    @task(5)
    def reschedule(self) -> None:
        if not self.bookings:
            return
        booking = random.choice(self.bookings)
        current = self.expect("GET", f"/bookings/{booking}", "GET /bookings/{id}", {200})
        if not current:
            return
        provider = next(p for p in FIXTURE["providers"] if p["providerId"] == current["providerId"])
        service = next(s for s in provider["services"] if s["serviceId"] == current["serviceId"])
        offered = self.slots(provider, service, random.randint(1, 7))
        if offered:
            body = {"start": random.choice(offered)["start"]}
            self.expect("POST", f"/bookings/{booking}/reschedule", "POST /bookings/{id}/reschedule", {200}, json=body)


class ProviderUser(_ApiUser):
    weight = 1
    wait_time = between(2, 8)
    groups: ClassVar[list[str]] = ["providers"]

    def on_start(self) -> None:
        # Providers act as the fixture's owner: only the owner may edit a provider.
        self.client.headers["Authorization"] = f"Bearer {token(str(self.host), FIXTURE['ownerSub'], ['providers'])}"

    @task(3)
    def day_view(self) -> None:
        provider = random.choice(FIXTURE["providers"])
        path = f"/bookings?providerId={provider['providerId']}&{window(random.randint(1, 7))}&limit=100"
        self.expect("GET", path, "GET /bookings?providerId", {200})

    @task(1)
    def edit_schedule(self) -> None:
        provider = random.choice(FIXTURE["providers"])
        day = (datetime.now(UTC) + timedelta(days=random.randint(60, 80))).date().isoformat()
        path = f"/providers/{provider['providerId']}/overrides/{day}"
        body = {"intervals": [{"start": "10:00", "end": "12:00"}]}
        self.expect("PUT", path, "PUT /providers/{id}/overrides/{date}", {200}, json=body)
        self.expect("DELETE", path, "DELETE /providers/{id}/overrides/{date}", {200, 204, 404})


class ContentionUser(_ApiUser):
    """Many users, the same three slots: after the first winners, every attempt is a 409, and no slot
    may ever be booked twice."""

    wait_time = between(0.2, 1)
    groups: ClassVar[list[str]] = ["customers"]
    targets: ClassVar[list[str]] = []  # the three slots everyone wants, from the first search

    @task
    def race(self) -> None:
        provider = FIXTURE["providers"][0]
        service = provider["services"][0]
        if not ContentionUser.targets:
            path = f"/providers/{provider['providerId']}/slots?serviceId={service['serviceId']}&{window(2)}"
            found = self.expect("GET", path, "GET /providers/{id}/slots", {200})
            ContentionUser.targets = [slot["start"] for slot in (found or {"slots": []})["slots"][:3]]
        if ContentionUser.targets:
            body = {"providerId": provider["providerId"], "serviceId": service["serviceId"]}
            body["start"] = random.choice(ContentionUser.targets)
            self.expect("POST", "/bookings", "POST /bookings", {201}, json=body)
