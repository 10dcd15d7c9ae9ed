"""A clinic's website calling the local stack: CORS as a stage with AllowedOrigins answers it, and the
WAF's rate rule per client IP. Its own stack (CORS on, the web ACL emulated); the shared one is off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack import LocalStack, StackConfig
from tests.integration.conftest import call, token

CLINIC = "https://clinic.example"
RATE_LIMIT = 40
WINDOW = 60
MISSING_PROVIDER = "/providers/prv_" + "0" * 32


@pytest.fixture(scope="module")
def browser_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = StackConfig(
        port=0,
        state_dir=tmp_path_factory.mktemp("browser"),
        echo=None,
        seed=False,
        allowed_origins=f"{CLINIC},http://localhost:8080",
        waf=True,
        waf_rate_limit=RATE_LIMIT,
        waf_rate_window_seconds=WINDOW,
    )
    running = LocalStack(config)
    running.start()
    yield running
    running.stop()


def invocations(stack: LocalStack) -> int:
    functions = call(stack, "GET", "/_local/status")[2]["functions"]
    return sum(int(function["invocations"]) for function in functions.values())


def test_a_preflight_from_an_allowed_origin_is_answered_without_a_function(browser_stack: LocalStack) -> None:
    before = invocations(browser_stack)
    asked = {"Origin": CLINIC, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "if-match"}
    status, headers, _ = call(browser_stack, "OPTIONS", "/bookings", headers=asked)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == CLINIC
    assert headers["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"
    assert "Authorization" in headers["Access-Control-Allow-Headers"].split(",")
    assert headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in headers
    assert invocations(browser_stack) == before


def test_a_preflight_from_another_origin_gets_no_allow_header(browser_stack: LocalStack) -> None:
    asked = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    status, headers, body = call(browser_stack, "OPTIONS", "/bookings", headers=asked)
    assert (status, body["code"]) == (403, "CORS_NOT_ALLOWED")
    assert "Access-Control-Allow-Origin" not in headers


def test_the_gateways_own_refusals_can_be_read_by_the_page(browser_stack: LocalStack) -> None:
    status, headers, body = call(browser_stack, "GET", "/me", headers={"Origin": CLINIC})
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert headers["Access-Control-Allow-Origin"] == "*"  # a gateway response cannot compare origins
    assert "Access-Control-Allow-Credentials" not in headers


def test_a_functions_refusal_echoes_the_allowed_origin(browser_stack: LocalStack) -> None:
    bearer = token(browser_stack, "alice", ["customers"])
    status, headers, body = call(browser_stack, "GET", MISSING_PROVIDER, token=bearer, headers={"Origin": CLINIC})
    assert (status, body["code"]) == (404, "NOT_FOUND")
    assert headers["Access-Control-Allow-Origin"] == CLINIC
    assert headers["Vary"] == "Origin"
    status, headers, _ = call(browser_stack, "GET", "/me", token=bearer, headers={"Origin": "https://evil.example"})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers


def test_with_cors_off_nothing_carries_a_cors_header(stack: LocalStack) -> None:
    asked = {"Origin": CLINIC, "Access-Control-Request-Method": "GET"}
    answers = [
        call(stack, "OPTIONS", "/bookings", headers=asked),
        call(stack, "GET", "/me", headers={"Origin": CLINIC}),
        call(stack, "GET", MISSING_PROVIDER, token=token(stack, "alice", ["customers"]), headers={"Origin": CLINIC}),
    ]
    assert [status for status, _, _ in answers] == [404, 401, 404]
    assert answers[0][2]["code"] == "NOT_FOUND"  # as if there were no OPTIONS method
    for _, headers, _ in answers:
        assert not [name for name in headers if name.lower().startswith("access-control-")]


def test_one_address_past_the_rate_limit_gets_429_until_its_window_has_room(browser_stack: LocalStack) -> None:
    # Given one client (every local request comes from 127.0.0.1) sending past the limit
    answers = [call(browser_stack, "GET", "/health", headers={"Origin": CLINIC}) for _ in range(RATE_LIMIT + 1)]
    statuses = [status for status, _, _ in answers]
    assert 429 in statuses
    # Then the WAF's own answer: the API's THROTTLED problem, CORS as the web ACL sets it, no function run
    status, headers, body = answers[-1]
    assert (status, body["code"], body["status"]) == (429, "THROTTLED", 429)
    assert headers["Retry-After"] == str(WINDOW)
    assert headers["Access-Control-Allow-Origin"] == "*"
    before = invocations(browser_stack)
    assert call(browser_stack, "GET", "/health")[0] == 429
    assert invocations(browser_stack) == before
    # When the stack's clock moves past the window, the address is let through again
    assert call(browser_stack, "POST", "/_local/clock", body={"advanceSeconds": WINDOW})[0] == 200
    assert call(browser_stack, "GET", "/health")[0] == 200
