"""The OpenAPI document (what API Gateway and clients see) and the functions' routes and models agree."""

from __future__ import annotations

import json
import zoneinfo
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft4Validator, FormatChecker
from pydantic import BaseModel, TypeAdapter, ValidationError

from local.apigateway.api import ApiDefinition
from services.audit import handler as audit
from services.availability import handler as availability
from services.availability.handler import LocalDate
from services.availability.http_models import (
    NAME_PATTERN,
    IntervalIn,
    Name,
    OverrideIn,
    ProviderIn,
    ScheduleIn,
    ServiceIn,
    WeeklyIn,
)
from services.booking import handler as booking
from services.booking.http_models import BookingIn, CancelIn, RescheduleIn
from services.common.clock import INSTANT_PATTERN, SupportedInstant
from services.common.errors import ValidationFailedError
from services.common.http import expected_version
from services.common.timezones import TZDATA_VERSION

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


# The constraints the functions enforce, stated in the document (issue 18, item 12): for each, the
# document's own schema and the function's validation agree on the same samples, so that a schema-valid
# request is never refused as malformed and a schema-violating one never accepted.

PUBLIC = API.public_document()


def _validator(schema: dict[str, Any]) -> Draft4Validator:
    """The document's schema as a client's validator reads it (draft 4, formats checked)."""
    return Draft4Validator({**schema, "components": PUBLIC["components"]}, format_checker=FormatChecker())


def _accepts(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


INSTANT_SAMPLES = [
    "2026-03-08T09:00:00Z",
    "2026-03-08T09:00:00.5-04:00",
    "2000-01-01T00:00:00+14:00",
    "2099-12-31T23:59:59-12:00",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "2026-02-30T09:00:00Z",
    "2026-03-08T09:00:60Z",
    "2026-03-08t09:00:00z",
    "2026-03-08 09:00:00Z",
    "2026-03-08T09:00Z",
    "2026-03-08T09:00:00+0100",
    "2026-03-08T09:00:00",
    "1700000000",
    1700000000,
    "",
]


@pytest.mark.parametrize("sample", INSTANT_SAMPLES)
def test_an_instant_is_accepted_by_the_function_exactly_when_the_document_says_so(sample: Any) -> None:
    documented = _validator({"$ref": "#/components/schemas/Instant"}).is_valid(sample)
    assert _accepts(TypeAdapter(SupportedInstant), sample) == documented, sample


def test_an_instant_with_a_line_break_after_it_is_refused_as_json_schemas_dollar_reads() -> None:
    # ECMA-262's `$` (JSON Schema's dialect) is the end of the text; Python's `re` would let a final
    # line break through, which jsonschema's Python validator therefore does too.
    assert not _accepts(TypeAdapter(SupportedInstant), "2026-03-08T09:00:00Z\n")


def test_every_instant_a_request_carries_is_the_documented_instant() -> None:
    for path, item in PUBLIC["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("name") in ("from", "to"):
                    assert parameter["schema"]["pattern"] == INSTANT_PATTERN, f"{method} {path} {parameter['name']}"
    for component in ("BookingCreate", "BookingReschedule"):
        assert SCHEMAS[component]["properties"]["start"] == {"$ref": "#/components/schemas/Instant"}
    assert SCHEMAS["Instant"]["pattern"] == INSTANT_PATTERN


@pytest.mark.parametrize(
    "sample", ["2026-03-08", "2026-02-30", "2026-03-08T00:00:00", "2026-03-08T00:00:00Z", "20260308", "2026-3-8"]
)
def test_an_override_date_is_read_exactly_as_documented(sample: str) -> None:
    (date_parameter,) = [
        p for p in PUBLIC["paths"]["/providers/{providerId}/overrides/{date}"]["parameters"] if p.get("name") == "date"
    ]
    assert _accepts(TypeAdapter(LocalDate), sample) == _validator(date_parameter["schema"]).is_valid(sample), sample


@pytest.mark.parametrize(
    "sample", ["A", " A ", "   ", "\t\r\n", "\x1f", "\u00a0", "x" * 120, "x" * 121, " " + "x" * 120, ""]
)
def test_a_name_is_accepted_exactly_when_the_document_says_so(sample: str) -> None:
    assert SCHEMAS["Name"]["pattern"] == NAME_PATTERN
    documented = _validator({"$ref": "#/components/schemas/Name"}).is_valid(sample)
    assert _accepts(TypeAdapter(Name), sample) == documented, repr(sample)


def test_a_name_is_kept_without_the_blanks_around_it() -> None:
    assert TypeAdapter(Name).validate_python(" \tDr. Okafor\r\n") == "Dr. Okafor"


def test_the_time_zones_listed_are_the_ones_the_functions_tzdata_knows() -> None:
    # A tzdata upgrade changes what the functions take: this fails until the list is written again.
    listed = SCHEMAS["TimeZone"]["enum"]
    assert listed == sorted(zoneinfo.available_timezones()), f"the document lists the zones of tzdata {TZDATA_VERSION}"
    assert all(_accepts(TypeAdapter(ProviderIn), {"name": "A", "timeZone": name}) for name in listed)
    assert not _accepts(TypeAdapter(ProviderIn), {"name": "A", "timeZone": "Europe/Nowhere"})


@pytest.mark.parametrize(
    "sample", ['"3"', 'W/"3"', '"0"', '"' + "9" * 15 + '"', '"' + "9" * 16 + '"', "", "3", '"²"', 'w/"3"', '"3', "*"]
)
def test_if_match_is_accepted_exactly_when_the_document_says_so(sample: str) -> None:
    documented = _validator(PUBLIC["components"]["parameters"]["IfMatch"]["schema"]).is_valid(sample)
    event = {"headers": {"If-Match": sample}}
    app = SimpleNamespace(current_event=SimpleNamespace(headers=event["headers"]))
    try:
        expected_version(app)  # type: ignore[arg-type]
        accepted = True
    except ValidationFailedError:
        accepted = False
    assert accepted == documented, repr(sample)


def _links() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    responses = [
        (f"{method.upper()} {path}", response)
        for path, item in PUBLIC["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
    ]
    responses += [(f"components {name}", r) for name, r in PUBLIC["components"]["responses"].items()]
    for source, response in responses:
        for name, link in response.get("links", {}).items():
            found.append((source, name, link))
    return found


def _declared(parameter: dict[str, Any]) -> tuple[str, str]:
    """A parameter's location and name, its `$ref` followed."""
    if "$ref" in parameter:
        parameter = PUBLIC["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
    return parameter["in"], parameter["name"]


def test_links_lead_from_new_providers_and_bookings_to_real_operations_and_parameters() -> None:
    operations = {
        operation["operationId"]: (operation, item)
        for item in PUBLIC["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    links = _links()
    targets = {(source, link["operationId"]) for source, _, link in links}
    for target in ("getProvider", "putSchedule", "createService", "getSlots", "listBookings"):
        assert ("POST /providers", target) in targets
    for target in ("getBooking", "cancelBooking", "rescheduleBooking", "markNoShow", "getBookingHistory"):
        assert ("POST /bookings", target) in targets
    # A provider with hours and a service offers slots: the way from a new provider to a booking.
    for target in ("createService", "listServices"):
        assert ("PUT /providers/{providerId}/schedule", target) in targets
    assert ("POST /providers/{providerId}/services", "getSlots") in targets
    assert ("GET /providers/{providerId}/slots", "createBooking") in targets
    for source, name, link in links:
        operation, item = operations[link["operationId"]]
        declared = {_declared(p) for p in [*item.get("parameters", []), *operation.get("parameters", [])]}
        for parameter in link.get("parameters", {}):
            where, _, named = parameter.rpartition(".")
            assert any(n == named and where in ("", w) for w, n in declared), f"{source} {name}: {parameter}"
        for field in link.get("requestBody", {}):
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert field in resolve(body)["properties"], f"{source} {name}: body.{field}"


def test_links_are_for_clients_and_not_in_what_api_gateway_imports() -> None:
    assert _links()
    assert '"links"' not in json.dumps(API.document)


def test_no_required_parameter_admits_white_space_alone() -> None:
    """API Gateway's validator wants each required parameter "included and not blank": a schema that
    admits "   " promises clients an answer the gateway refuses with 400 (found by the fuzzer)."""
    document = API.public_document()

    def resolved(parameter: dict[str, Any]) -> dict[str, Any]:
        found: Any = document
        for part in parameter.get("$ref", "#").removeprefix("#").strip("/").split("/"):
            found = found[part] if part else found
        return dict(found) if "$ref" in parameter else parameter

    admitting = [
        f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and method != "parameters"
        for parameter in map(resolved, [*item.get("parameters", []), *operation.get("parameters", [])])
        if parameter.get("required") and Draft4Validator(parameter["schema"]).is_valid("   ")
    ]
    assert admitting == []
