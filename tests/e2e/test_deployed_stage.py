"""An authenticated flow against a deployed stage: `make smoke URL=https://…/dev TOKEN=…`.

The token is a Cognito ID token of a test user in the `customers` and `providers` groups (the README
says how to create one). The flow leaves a provider named `smoke …` behind and cancels its booking.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.e2e

URL = os.environ.get("APPOINTMENTS_URL", "").rstrip("/")
TOKEN = os.environ.get("APPOINTMENTS_TOKEN", "")
if not URL:
    pytest.skip("a deployed stage's tests: make smoke URL=… TOKEN=…", allow_module_level=True)


def call(method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{URL}{path}", method=method, data=None if body is None else json.dumps(body).encode()
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None


def test_public_routes_and_the_authorizer() -> None:
    assert call("GET", "/health", token=None)[0] == 200
    status, document = call("GET", "/openapi.json", token=None)
    assert status == 200 and "/bookings" in document["paths"]
    status, problem = call("GET", "/me", token=None)
    assert status == 401 and problem["code"] == "UNAUTHORIZED"


def test_a_provider_offers_slots_and_a_customer_books_and_cancels_one() -> None:
    assert TOKEN, "TOKEN=… (a test user's ID token) is needed for the authenticated flow"
    status, me = call("GET", "/me")
    assert status == 200 and {"customers", "providers"} <= set(me["groups"]), me
    status, provider = call("POST", "/providers", {"name": f"smoke {int(time.time())}", "timeZone": "Europe/Berlin"})
    assert status == 201, provider
    pid = provider["providerId"]
    weekly = {day: [{"start": "08:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    assert call("PUT", f"/providers/{pid}/schedule", {"weekly": weekly})[0] == 200
    status, service = call("POST", f"/providers/{pid}/services", {"name": "Visit", "durationMinutes": 30})
    assert status == 201, service

    start = datetime.now(UTC) + timedelta(days=2)
    window = f"from={quote(start.isoformat())}&to={quote((start + timedelta(days=3)).isoformat())}"
    status, found = call("GET", f"/providers/{pid}/slots?serviceId={service['serviceId']}&{window}")
    assert status == 200 and found["slots"], found
    status, booking = call(
        "POST", "/bookings", {"providerId": pid, "serviceId": service["serviceId"], "start": found["slots"][0]["start"]}
    )
    assert status == 201, booking
    status, again = call(
        "POST", "/bookings", {"providerId": pid, "serviceId": service["serviceId"], "start": found["slots"][0]["start"]}
    )
    assert status == 409 and again["code"] == "BOOKING_CONFLICT"
    assert call("GET", f"/bookings/{booking['bookingId']}")[0] == 200
    status, cancelled = call("POST", f"/bookings/{booking['bookingId']}/cancel", {})
    assert status == 200 and cancelled["status"] == "CANCELLED"
