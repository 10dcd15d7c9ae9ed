"""The OpenAPI document (what API Gateway and clients see) and the functions' routes and models agree."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from local.apigateway.api import ApiDefinition
from services.audit import handler as audit
from services.availability import handler as availability
from services.availability.http_models import IntervalIn, OverrideIn, ProviderIn, ScheduleIn, ServiceIn, WeeklyIn
from services.booking import handler as booking
from services.booking.http_models import BookingIn, CancelIn, RescheduleIn

API = ApiDefinition.load()
SCHEMAS = API.public_document()["components"]["schemas"]  # as written, for clients


def operations_of(function: str) -> set[tuple[str, str]]:
    return {(route.method, route.resource) for route in API.routes if route.function == function}


@pytest.mark.parametrize(
    ("app", "function"),
    [(availability.app, "AvailabilityFunction"), (booking.app, "BookingFunction"), (audit.app, "AuditFunction")],
)
def test_every_route_of_a_function_is_in_the_document_and_nothing_else_is_integrated(app: Any, function: str) -> None:
    generated = app.get_openapi_schema().paths or {}
    routes = {
        (method.upper(), path)
        for path, item in generated.items()
        for method in ("get", "put", "post", "delete", "patch")
        if getattr(item, method)
    }
    assert routes == operations_of(function)


@pytest.mark.parametrize(
    ("model", "component"),
    [
        (ProviderIn, "ProviderCreate"),
        (ScheduleIn, "ScheduleUpdate"),
        (OverrideIn, "OverrideUpdate"),
        (ServiceIn, "ServiceCreate"),
        (IntervalIn, "Interval"),
        (WeeklyIn, "Weekly"),
        (BookingIn, "BookingCreate"),
        (CancelIn, "BookingCancel"),
        (RescheduleIn, "BookingReschedule"),
    ],
)
def test_request_models_match_their_documented_schemas(model: type[BaseModel], component: str) -> None:
    generated: dict[str, Any] = model.model_json_schema()
    documented = SCHEMAS[component]
    assert set(generated["properties"]) == set(documented["properties"]), "the same fields"
    assert set(generated.get("required", [])) == set(documented.get("required", [])), "the same required fields"
    assert documented.get("additionalProperties") is False, "unknown fields are refused in both"
    for name, field in generated["properties"].items():
        field, described = unwrap(field), resolve(documented["properties"][name])
        bounds = ["minimum", "maximum", "minLength", "maxLength", "maxItems"]
        if field.get("type") != "array" and field.get("default") is not None:
            bounds.append("default")  # an absent optional field means null in both; an empty list is []
        for bound in bounds:
            if bound in field or bound in described:
                assert field.get(bound) == described.get(bound), f"{component}.{name}: {bound}"


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """A documented schema with its `$ref` followed."""
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def unwrap(field: dict[str, Any]) -> dict[str, Any]:
    """pydantic writes an optional field as `anyOf: [<schema>, null]`; compare the schema itself."""
    variants = [v for v in field.get("anyOf", []) if v.get("type") != "null"]
    return {**variants[0], "default": field.get("default")} if len(variants) == 1 else field


def test_every_operation_that_reads_or_writes_the_table_documents_its_503_with_retry_after() -> None:
    # A table that throttles through the SDK's retries answers 503 SERVICE_UNAVAILABLE (services/common/http.py);
    # /me only echoes the caller's claims and the mock touches nothing.
    document = API.document
    for route in API.routes:
        if route.integration == "mock" or route.resource == "/me":
            continue
        answer = document["paths"][route.resource][route.method.lower()]["responses"].get("503")
        assert answer is not None, f"{route.method} {route.resource} does not document its 503"
        if "$ref" in answer:
            answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        assert "Retry-After" in answer.get("headers", {}) or route.resource == "/health", route.resource
