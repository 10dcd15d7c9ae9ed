"""CORS for browser clients: the policy, the functions' headers, the preflight API Gateway answers
(its Velocity templates rendered with airspeed), the gateway responses, and the templates' wiring."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from deploy.openapi import shipped_document
from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.apigateway.api import ApiDefinition
from local.apigateway.http_messages import HttpRequest
from local.apigateway.mock_integration import mock_response, render
from services.common.cors import ALLOWED_ORIGINS_PATTERN, CorsPolicy, InvalidOriginsError, parse_origins
from services.common.http import with_cors

CLINIC = "https://clinic.example"
OTHER_CLINIC = "http://localhost:8080"
ORIGINS = f"{CLINIC},{OTHER_CLINIC}"
POLICY = CorsPolicy.from_text(ORIGINS)


def preflight(headers: dict[str, str]) -> HttpRequest:
    return HttpRequest("OPTIONS", "/bookings", list(headers.items()), b"")


def options_integration(api: ApiDefinition, resource: str = "/bookings") -> dict[str, Any]:
    route = api.find("OPTIONS", resource)
    assert route is not None
    return route[0].integration_spec


# The policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["*", "https://*.example", "https://clinic.example/", "clinic.example", " https://a.b"]
)
def test_allowed_origins_refuses_wildcards_paths_and_bare_hosts(text: str) -> None:
    with pytest.raises(InvalidOriginsError):
        parse_origins(text)


def test_allowed_origins_takes_a_comma_separated_list_and_empty_for_off() -> None:
    assert parse_origins(ORIGINS) == {CLINIC, OTHER_CLINIC}
    assert parse_origins("") == frozenset()
    assert not CorsPolicy.from_text("").enabled


def test_the_templates_hold_allowed_origins_to_the_policys_own_pattern() -> None:
    for name in ("root.yaml", "api.yaml", "availability.yaml", "booking.yaml", "audit.yaml"):
        parameter = load_template(TEMPLATES / name)["Parameters"]["AllowedOrigins"]
        assert parameter["Default"] == "", name  # off by default
        assert parameter["AllowedPattern"] == ALLOWED_ORIGINS_PATTERN, name
        assert not re.fullmatch(parameter["AllowedPattern"], "*")


# The functions' answers --------------------------------------------------------------------------


def answer() -> dict[str, Any]:
    return {"statusCode": 404, "multiValueHeaders": {"Content-Type": ["application/problem+json"]}, "body": "{}"}


def test_a_function_answer_echoes_an_allowed_origin_with_vary_and_exposed_headers() -> None:
    headers = with_cors(answer(), {"headers": {"origin": CLINIC}}, POLICY)["multiValueHeaders"]
    assert headers["Access-Control-Allow-Origin"] == [CLINIC]
    assert headers["Vary"] == ["Origin"]
    assert "ETag" in headers["Access-Control-Expose-Headers"][0]  # a page must read the version for If-Match
    assert "Access-Control-Allow-Credentials" not in headers


def test_a_function_answer_to_another_origin_allows_nothing_but_still_varies() -> None:
    headers = with_cors(answer(), {"headers": {"Origin": "https://evil.example"}}, POLICY)["multiValueHeaders"]
    assert "Access-Control-Allow-Origin" not in headers
    assert headers["Vary"] == ["Origin"]


def test_a_function_answer_has_no_cors_header_at_all_when_off() -> None:
    headers = with_cors(answer(), {"headers": {"Origin": CLINIC}}, CorsPolicy())["multiValueHeaders"]
    assert headers == {"Content-Type": ["application/problem+json"]}


def test_the_415_refusal_carries_the_headers_too() -> None:
    refused = {"statusCode": 415, "headers": {"Content-Type": "application/problem+json"}, "body": "{}"}
    headers = with_cors(refused, {"headers": {"Origin": CLINIC}}, POLICY)["headers"]
    assert headers["Access-Control-Allow-Origin"] == CLINIC


# The preflight: the deployed Velocity template decides as the policy does ------------------------

CASES = [
    ({"Origin": CLINIC, "Access-Control-Request-Method": "POST"}, 204),
    ({"origin": OTHER_CLINIC, "access-control-request-method": "GET"}, 204),  # HTTP/2 sends lower case
    ({"Origin": CLINIC, "Access-Control-Request-Method": "DELETE"}, 403),  # /bookings has no DELETE
    ({"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}, 403),
    ({"Origin": f"{CLINIC},{OTHER_CLINIC}", "Access-Control-Request-Method": "GET"}, 403),
    ({"Origin": "https://clinic.example.evil", "Access-Control-Request-Method": "GET"}, 403),
    ({"Origin": "https://clinic", "Access-Control-Request-Method": "GET"}, 403),  # a prefix of one
    ({"Origin": CLINIC}, 403),  # not a preflight: no method asked for
    ({"Access-Control-Request-Method": "GET"}, 403),
]


@pytest.mark.parametrize(("headers", "expected"), CASES)
def test_the_preflight_template_grants_exactly_what_the_policy_grants(headers: dict[str, str], expected: int) -> None:
    # Given the request template CloudFormation makes of the shipped document for these origins
    template = options_integration(ApiDefinition.load(allowed_origins=ORIGINS))["requestTemplates"]["application/json"]
    # When API Gateway's Velocity renders it for the preflight
    selected = json.loads(render(template, preflight(headers), "r-1"))["statusCode"]
    # Then it grants what the policy the functions apply grants, nothing more
    origin = next((v for k, v in headers.items() if k.lower() == "origin"), None)
    method = next((v for k, v in headers.items() if k.lower() == "access-control-request-method"), None)
    assert selected == expected
    assert (selected == 204) == POLICY.preflight_allowed(origin, method, ["GET", "POST"])


@pytest.mark.parametrize(("headers", "_expected"), CASES)
def test_with_cors_off_every_preflight_is_not_found(headers: dict[str, str], _expected: int) -> None:
    template = options_integration(ApiDefinition.load())["requestTemplates"]["application/json"]
    assert json.loads(render(template, preflight(headers), "r-1"))["statusCode"] == 404


def test_an_allowed_preflight_is_answered_with_the_origin_and_what_the_resource_offers() -> None:
    integration = options_integration(ApiDefinition.load(allowed_origins=ORIGINS), "/bookings/{bookingId}")
    request = preflight({"Origin": CLINIC, "Access-Control-Request-Method": "GET"})
    response = mock_response(integration, request, "r-1")
    assert response.status == 204 and response.body == b""
    assert response.headers["Access-Control-Allow-Origin"] == CLINIC
    assert response.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert set(response.headers["Access-Control-Allow-Headers"].split(",")) >= {"Authorization", "If-Match"}
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_refused_preflight_allows_nothing_and_says_why() -> None:
    integration = options_integration(ApiDefinition.load(allowed_origins=ORIGINS))
    request = preflight({"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    response = mock_response(integration, request, "r-2")
    assert response.status == 403
    assert not [name for name in response.headers if name.startswith("Access-Control-")]
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(response.body) | {"detail": "-"} == {
        "type": "about:blank", "title": "Forbidden", "status": 403, "code": "CORS_NOT_ALLOWED", "detail": "-",
        "requestId": "r-2",
    }  # fmt: skip


def test_with_cors_off_a_preflight_reads_as_the_missing_method_it_was_before() -> None:
    api = ApiDefinition.load()
    request = preflight({"Origin": CLINIC, "Access-Control-Request-Method": "GET"})
    response = mock_response(options_integration(api), request, "r-3")
    missing = api.gateway_response("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", "r-3")
    assert (response.status, response.body) == (missing.status, missing.body)
    assert not [name for name in response.headers if name.startswith("Access-Control-")]


def test_every_resource_has_a_mock_preflight_with_no_security_and_its_own_operation_id() -> None:
    document = shipped_document()
    ids = []
    for resource, item in document["paths"].items():
        operation = item["options"]
        assert operation["security"] == [], resource  # a browser sends no token with a preflight
        assert operation["x-amazon-apigateway-integration"]["type"] == "mock", resource
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


# Gateway responses -------------------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["UNAUTHORIZED", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_5XX", "THROTTLED"])
def test_gateway_responses_let_a_page_read_them_when_on_and_say_nothing_when_off(response_type: str) -> None:
    on = ApiDefinition.load(allowed_origins=ORIGINS).gateway_response(response_type, "no", "r-4")
    off = ApiDefinition.load().gateway_response(response_type, "no", "r-4")
    # A gateway response is not a Velocity template: it cannot compare origins, so it allows any, and
    # never with credentials (a page may read an error it caused, nothing more).
    assert on.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in on.headers
    assert not [name for name in off.headers if name.startswith("Access-Control-")]


def test_the_shipped_document_makes_the_gateway_responses_headers_conditional_on_the_api_stack() -> None:
    conditions = load_template(TEMPLATES / "api.yaml")["Conditions"]
    assert conditions["CorsEnabled"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AllowedOrigins"}, ""]}]}
    for kind, response in shipped_document()["x-amazon-apigateway-gateway-responses"].items():
        value = response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert value == {"Fn::If": ["CorsEnabled", "'*'", {"Ref": "AWS::NoValue"}]}, kind


# Wiring ------------------------------------------------------------------------------------------


def test_the_root_stack_hands_allowed_origins_to_the_api_and_every_function() -> None:
    root = load_template(TEMPLATES / "root.yaml")
    for stack in ("Api", "Availability", "Booking", "Audit"):
        assert root["Resources"][stack]["Properties"]["Parameters"]["AllowedOrigins"] == {"Ref": "AllowedOrigins"}
    for name in ("availability.yaml", "booking.yaml", "audit.yaml"):
        functions = resources_of_type(load_template(TEMPLATES / name), "AWS::Lambda::Function")
        for logical_id, function in functions.items():
            variables = function["Properties"]["Environment"]["Variables"]
            assert variables["ALLOWED_ORIGINS"] == {"Ref": "AllowedOrigins"}, (name, logical_id)


# Where API Gateway lets a method response header come from: a static value, the integration
# response, the context or a stage variable ("Parameter mapping sources" for REST APIs). A method
# request header is not one: the importer refuses it ("Invalid mapping expression").
RESPONSE_MAPPING_SOURCE = re.compile(r"'.*'|integration\.response\.\S+|context\.\S+|stageVariables\.\S+", re.S)


def test_every_integration_response_maps_declared_headers_from_sources_api_gateway_accepts() -> None:
    document = shipped_document()
    checked = 0
    for resource, item in document["paths"].items():
        for method, operation in item.items():
            integration = operation.get("x-amazon-apigateway-integration") if isinstance(operation, dict) else None
            for spec in (integration or {}).get("responses", {}).values():
                declared = operation["responses"][spec["statusCode"]].get("headers", {})
                for name, source in spec.get("responseParameters", {}).items():
                    where = f"{method.upper()} {resource} {spec['statusCode']} {name}"
                    assert name.removeprefix("method.response.header.") in declared, f"{where}: not declared"
                    assert RESPONSE_MAPPING_SOURCE.fullmatch(str(source)), f"{where}: from {source}"
                    checked += 1
    assert checked > 100  # every resource's preflight, three answers each


def test_the_local_mock_refuses_a_mapping_api_gateway_would_refuse() -> None:
    integration = {
        "responses": {"default": {"statusCode": "204", "responseParameters": {
            "method.response.header.Access-Control-Allow-Origin": "method.request.header.Origin"}}},
    }  # fmt: skip
    with pytest.raises(ValueError, match="not emulated"):
        mock_response(integration, preflight({"Origin": CLINIC}), "r-1")
