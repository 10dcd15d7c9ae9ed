from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from services.audit.settings import AuditSettings
from services.availability import handler
from services.availability.domain.health import CachedProbe, TableStatus, check_health
from services.common.errors import FieldError
from services.common.http import field_errors
from services.common.settings import ServiceSettings, load_settings
from tests.conftest import STAFF_ISSUER, load_event


def test_get_me_answers_the_callers_identity(service_environment, lambda_context) -> None:
    response = handler.lambda_handler(load_event("api_gateway_rest_get_me"), lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "sub": "4a7b2c1e-0d5f-4e3a-9b8c-7d6e5f4a3b2c",
        "groups": ["customers", "providers"],
    }


def test_get_me_names_staff_groups_only_from_the_staff_pool(service_environment, lambda_context) -> None:
    # Given the same user's claims with ops added, first from the customer pool, then from the staff pool
    event = copy.deepcopy(load_event("api_gateway_rest_get_me"))
    claims = event["requestContext"]["authorizer"]["claims"]
    claims["cognito:groups"] = "customers,ops"
    as_customer = json.loads(handler.lambda_handler(event, lambda_context)["body"])
    claims |= {"cognito:groups": "admins,ops", "iss": STAFF_ISSUER}
    as_staff = json.loads(handler.lambda_handler(event, lambda_context)["body"])
    # Then ops counts only where the staff pool (MFA required) issued the token
    assert (as_customer["groups"], as_staff["groups"]) == (["customers"], ["admins", "ops"])


def test_get_me_without_groups_is_a_403_problem(service_environment, lambda_context) -> None:
    event = copy.deepcopy(load_event("api_gateway_rest_get_me"))
    event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = ""
    response = handler.lambda_handler(event, lambda_context)
    body = json.loads(response["body"])
    assert response["statusCode"] == 403
    assert response["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert (body["code"], body["status"], body["requestId"]) == (
        "FORBIDDEN",
        403,
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    )


def test_unknown_route_is_a_404_problem(service_environment, lambda_context) -> None:
    event = copy.deepcopy(load_event("api_gateway_rest_get_me"))
    event["path"] = event["resource"] = "/nowhere"
    response = handler.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["code"] == "NOT_FOUND"


class FakeProbe:
    def __init__(self, status: TableStatus) -> None:
        self.status = status

    def probe(self) -> TableStatus:
        return self.status


def test_health_is_degraded_when_the_table_is_unreachable() -> None:
    report = check_health("1.0", "test", "2026f", FakeProbe(TableStatus("t", reachable=False)))
    assert not report.healthy
    assert report.to_json() == {
        "status": "degraded",
        "version": "1.0",
        "stage": "test",
        "tzdataVersion": "2026f",
        "table": {"reachable": False},  # never its name: /health answers anyone
    }
    healthy = check_health("1.0", "test", "2026f", FakeProbe(TableStatus("t", True, 3.14159)))
    assert healthy.to_json()["table"] == {"reachable": True, "latencyMs": 3.14}


def test_settings_validate_the_environment(monkeypatch: pytest.MonkeyPatch, service_environment) -> None:
    settings = load_settings(ServiceSettings)
    assert (settings.stage, settings.table_name, settings.service_name) == ("test", "appointments-test", "availability")
    # The audit function needs its bucket: a missing variable fails loudly, never with a silent default.
    with pytest.raises(ValidationError, match="AUDIT_BUCKET_NAME"):
        load_settings(AuditSettings)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "LOUD")
    load_settings.cache_clear()
    with pytest.raises(ValidationError, match="POWERTOOLS_LOG_LEVEL"):
        load_settings(ServiceSettings)


def test_field_errors_name_fields_with_dotted_paths() -> None:
    errors = field_errors(
        [
            {"loc": ("body", "weekly", "mon", 0, "start"), "msg": "bad time"},
            {"loc": ("query", "from"), "msg": "missing"},
            {"loc": (), "msg": "no body"},
            {"loc": ("body", 9), "msg": "JSON decode error", "type": "json_invalid"},
        ]
    )
    assert errors == [
        FieldError("body.weekly.mon[0].start", "bad time"),
        FieldError("query.from", "missing"),
        FieldError("body", "no body"),
        FieldError("body", "is not valid JSON: JSON decode error"),
    ]


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_refused_with_415(service_environment, lambda_context, content_type) -> None:
    event = copy.deepcopy(load_event("api_gateway_rest_get_me"))
    event["httpMethod"], event["body"] = "POST", '{"name": "x", "timeZone": "UTC"}'
    event["path"] = event["resource"] = "/providers"
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "Content-Type"}
    event["headers"]["Content-Type"] = content_type
    response = handler.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 415
    assert json.loads(response["body"])["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_problem_lists_at_most_the_first_hundred_invalid_fields_as_the_api_document_promises() -> None:
    from services.common.errors import MAX_FIELD_ERRORS, Problem

    many = [FieldError(f"body.items[{i}]", "is invalid") for i in range(250)]
    listed = Problem(422, "VALIDATION_FAILED", "invalid", errors=many).to_json()["errors"]
    assert isinstance(listed, list) and len(listed) == MAX_FIELD_ERRORS == 100
    assert listed[0] == {"field": "body.items[0]", "message": "is invalid"}


def test_an_extension_member_never_redefines_the_problems_own() -> None:
    """RFC 9457: extension members add to a problem document. An error naming an extension `status`
    (a waitlist entry's) once overwrote the HTTP status; the fuzzer caught it against the document."""
    from services.common.errors import Problem

    problem = Problem(
        409, "WAITLIST_ENTRY_ENDED", "ended", request_id="r", extensions={"status": "CANCELLED", "code": "x"}
    )
    document = problem.to_json()
    assert (document["status"], document["code"], document["requestId"]) == (409, "WAITLIST_ENTRY_ENDED", "r")


def test_health_looks_at_the_table_at_most_once_per_cache_period() -> None:
    class CountingProbe:
        calls = 0

        def probe(self) -> TableStatus:
            self.calls += 1
            return TableStatus("t", reachable=self.calls == 1)

    now = [100.0]
    counting = CountingProbe()
    cached = CachedProbe(counting, 5, lambda: now[0])
    assert [check_health("1", "s", "z", cached).healthy for _ in range(50)] == [True] * 50
    assert counting.calls == 1  # fifty requests, one DescribeTable
    now[0] += 5
    assert check_health("1", "s", "z", cached).healthy is False and counting.calls == 2
