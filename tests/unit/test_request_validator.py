"""API Gateway's request validator, emulated: what it stops, what it lets through, and what it says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy.openapi import model_schema
from local.apigateway.api import ApiDefinition
from local.apigateway.gateway import Gateway
from local.apigateway.http_messages import HttpRequest
from local.apigateway.request_validator import RequestValidator
from local.cognito import user_pool
from local.lambda_runtime.function_runtime import Invocation
from local.lambda_runtime.service import LambdaService

API = ApiDefinition.load()
POOLS = user_pool.UserPools.generate()
PROVIDER = "prv_" + "1" * 32
SERVICE = "svc_" + "2" * 32


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any], *, request_id: str, trace_id: str) -> Invocation:
        self.events.append(event)
        return Invocation(request_id, payload={"statusCode": 200, "headers": {}, "body": "{}"})


def send(method: str, target: str, body: Any = None, content_type: str = "application/json") -> tuple[Any, Recorder]:
    recorder = Recorder()
    functions: Any = {"AvailabilityFunction": recorder, "BookingFunction": recorder, "AuditFunction": recorder}
    gateway = Gateway(API, LambdaService(functions), POOLS)
    token = POOLS.mint("owner", ["providers", "customers"])
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    headers = [("Authorization", f"Bearer {token}"), ("Content-Type", content_type)]
    return gateway.handle(HttpRequest(method, target, headers, raw)), recorder


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("a required property missing", {"timeZone": "UTC"}),
        ("a property of the wrong type", {"name": 1, "timeZone": "UTC"}),
        ("longer than maxLength", {"name": "x" * 121, "timeZone": "UTC"}),
        ("not an object", ["name"]),
        ("not JSON", b'{"name": '),
        ("no body at all", None),
    ],
)
def test_a_body_the_model_refuses_is_a_400_that_never_reaches_the_function(case: str, body: Any) -> None:
    response, function = send("POST", "/providers", body)
    assert function.events == []
    assert (response.status, response.headers["Content-Type"]) == (400, "application/problem+json")
    problem = json.loads(response.body)
    assert (problem["code"], problem["detail"]) == ("VALIDATION_FAILED", "Invalid request body")
    assert problem["errors"] == [{"field": "body", "message": "Invalid request body"}]


def test_a_property_the_model_does_not_know_passes_the_gateway_as_on_aws() -> None:
    # "The additionalProperties … fields are not supported in Models" (API Gateway's important notes
    # for REST APIs): the shipped model has none, so the function is the one that refuses the field.
    response, function = send("POST", "/providers", {"name": "A", "timeZone": "UTC", "colour": "red"})
    assert response.status == 200 and len(function.events) == 1
    assert "additionalProperties" not in json.dumps(API.document["components"]["schemas"])


def test_the_access_log_keeps_what_the_model_said(tmp_path: Any) -> None:
    recorder = Recorder()
    records: list[dict[str, Any]] = []
    gateway = Gateway(API, LambdaService({"AvailabilityFunction": recorder}), POOLS, on_access=records.append)  # type: ignore[dict-item]
    token = POOLS.mint("owner", ["providers"])
    body = json.dumps({"name": 1, "timeZone": "UTC"}).encode()
    gateway.handle(HttpRequest("POST", "/providers", [("Authorization", f"Bearer {token}")], body))
    assert records[0]["errorMessage"] == "Invalid request body: /name: 1 is not of type 'string'"


def test_a_body_the_model_accepts_goes_through_as_sent() -> None:
    response, function = send("POST", "/providers", {"name": " A ", "timeZone": "Pacific/Chatham"})
    assert response.status == 200 and len(function.events) == 1
    assert json.loads(function.events[0]["body"]) == {"name": " A ", "timeZone": "Pacific/Chatham"}


def test_a_time_zone_the_document_does_not_list_is_refused_before_the_function() -> None:
    # The document lists the zones (the functions' tzdata), so the model holds them as API Gateway would.
    response, function = send("POST", "/providers", {"name": "A", "timeZone": "Not/A_Zone"})
    assert response.status == 400 and function.events == []
    assert json.loads(response.body)["code"] == "VALIDATION_FAILED"


def test_a_content_type_without_a_model_is_not_validated() -> None:
    """API Gateway validates only against the model of the request's content type; the function then
    answers for the rest (415 for a body that is not JSON)."""
    response, function = send("POST", "/providers", b"name=A", content_type="text/plain")
    assert response.status == 200 and len(function.events) == 1


@pytest.mark.parametrize(
    ("query", "missing"),
    [
        ("", "serviceId, from, to"),
        ("?serviceId=&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", "serviceId"),  # blank is missing
        (f"?serviceId={SERVICE}&from=%20&to=2026-12-02T00:00:00Z", "from"),
    ],
)
def test_a_missing_or_blank_required_parameter_is_a_400_naming_it(query: str, missing: str) -> None:
    response, function = send("GET", f"/providers/{PROVIDER}/slots{query}")
    assert function.events == []
    problem = json.loads(response.body)
    assert (response.status, problem["code"]) == (400, "VALIDATION_FAILED")
    assert problem["detail"] == f"Missing required request parameters: [{missing}]"


def test_parameters_are_checked_for_presence_only_never_for_their_schema() -> None:
    # serviceId's pattern and the instants' format are the function's to check, as on AWS.
    response, function = send("GET", f"/providers/{PROVIDER}/slots?serviceId=nope&from=yesterday&to=today")
    assert response.status == 200 and len(function.events) == 1


def test_a_validator_that_is_off_checks_nothing() -> None:
    document = json.loads(json.dumps(API.document))
    document["x-amazon-apigateway-request-validators"]["all"] = {
        "validateRequestBody": False,
        "validateRequestParameters": False,
    }
    validator = RequestValidator(document)
    refusal = validator.check("POST", "/providers", HttpRequest("POST", "/providers", [], b"[]"), {})
    assert refusal is None
    assert validator.check("GET", "/providers/{providerId}/slots", HttpRequest("GET", "/x", [], b""), {}) is None


def test_an_operation_may_choose_its_own_validator() -> None:
    document = json.loads(json.dumps(API.document))
    document["x-amazon-apigateway-request-validators"]["params-only"] = {
        "validateRequestBody": False,
        "validateRequestParameters": True,
    }
    document["paths"]["/providers"]["post"]["x-amazon-apigateway-request-validator"] = "params-only"
    validator = RequestValidator(document)
    assert validator.check("POST", "/providers", HttpRequest("POST", "/providers", [], b"[]"), {}) is None


def test_draft4_models_turn_nullable_into_a_null_type_and_drop_openapi_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "note": {"type": "string", "nullable": True, "example": "hi"},
            "nullable": {"type": "boolean"},  # a property may be called anything
            "any": {"nullable": True},
        },
    }
    assert model_schema(schema) == {
        "type": "object",
        "properties": {"note": {"type": ["string", "null"]}, "nullable": {"type": "boolean"}, "any": {}},
    }
