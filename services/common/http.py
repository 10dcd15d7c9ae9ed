"""The REST resolver every API function uses, with errors mapped to problem+json in this one place."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import ClientError

from services.common.auth import Attribution, Principal
from services.common.cors import CorsPolicy, header
from services.common.dynamodb import error_code
from services.common.errors import DomainError, FieldError, Problem, ValidationFailedError
from services.common.observability import REFUSALS, Metric, count
from services.common.settings import ServiceSettings, load_settings
from services.common.tracing import current_trace

PROBLEM_JSON = "application/problem+json"
_JSON_TYPE = re.compile(r"application/([\w.+-]+\+)?json")


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[str]:
    """A problem document as an HTTP response."""
    return Response(
        status_code=problem.status,
        content_type=PROBLEM_JSON,
        body=json.dumps(problem.to_json()),
        headers=headers,
    )


def field_errors(validation_errors: Sequence[Any]) -> list[FieldError]:
    """Powertools/pydantic validation errors as `{field, message}` with dotted field paths."""
    errors = []
    for error in validation_errors:
        if error.get("type") == "json_invalid":
            # Its location is a character offset, not a field: the body as a whole is at fault.
            errors.append(FieldError("body", f"is not valid JSON: {error.get('msg', 'cannot be parsed')}"))
            continue
        parts: list[str] = []
        for part in error.get("loc", ()):
            if isinstance(part, int):
                parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            else:
                parts.append(str(part))
        errors.append(FieldError(".".join(parts) or "body", str(error.get("msg", "is invalid"))))
    return errors


# What AWS answers when a table or an API is over its capacity, after the SDK's own retries.
THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})


def build_resolver(logger: Logger) -> APIGatewayRestResolver:
    """An `APIGatewayRestResolver` with request validation and the project's error mapping."""
    app = APIGatewayRestResolver(enable_validation=True)

    def request_id() -> str | None:
        context = app.current_event.request_context
        return context.request_id if context else None

    @app.exception_handler(DomainError)
    def handle_domain_error(error: DomainError) -> Response[str]:
        errors = error.errors if isinstance(error, ValidationFailedError) else []
        logger.info("request refused", code=error.code, status=int(error.status))
        if error.code in REFUSALS:
            count(REFUSALS[error.code])
        problem = Problem(
            int(error.status),
            error.code,
            error.detail,
            errors=errors,
            request_id=request_id(),
            extensions=error.extensions(),
        )
        return problem_response(problem, error.headers() or None)

    @app.exception_handler(RequestValidationError)
    def handle_validation_error(error: RequestValidationError) -> Response[str]:
        errors = field_errors(error.errors())
        logger.info("request invalid", fields=[e.field for e in errors])
        count(Metric.VALIDATION_FAILED)
        problem = Problem(
            int(HTTPStatus.BAD_REQUEST),
            ValidationFailedError.code,
            "The request is invalid; see errors for each field.",
            errors=errors,
            request_id=request_id(),
        )
        return problem_response(problem)

    @app.not_found
    def handle_not_found(_error: Exception) -> Response[str]:
        detail = f"No route for {app.current_event.http_method} {app.current_event.path}"
        return problem_response(Problem(int(HTTPStatus.NOT_FOUND), "NOT_FOUND", detail, request_id=request_id()))

    @app.exception_handler(Exception)
    def handle_unexpected(error: Exception) -> Response[str]:
        if isinstance(error, ClientError) and error_code(error) in THROTTLED:
            # The table refused even the SDK's retries: busy, not broken. Say when to come back.
            logger.warning("dependency throttled", code=error_code(error))
            busy = Problem(
                int(HTTPStatus.SERVICE_UNAVAILABLE),
                "SERVICE_UNAVAILABLE",
                "The service is busy right now; retry shortly.",
                request_id=request_id(),
            )
            return problem_response(busy, {"Retry-After": "1"})
        # Our fault, not the client's: log it whole, answer 500 without internals.
        logger.exception("unhandled error")
        problem = Problem(
            int(HTTPStatus.INTERNAL_SERVER_ERROR), "INTERNAL", "An unexpected error occurred.", request_id=request_id()
        )
        return problem_response(problem)

    return app


def current_principal(app: APIGatewayRestResolver) -> Principal:
    """The caller, from the claims API Gateway's authorizer put on the event (staff groups from the staff pool only)."""
    staff_issuer = load_settings(ServiceSettings).staff_issuer
    return Principal.from_request_context(app.current_event.raw_event.get("requestContext"), staff_issuer)


def attribution_for(app: APIGatewayRestResolver, principal: Principal) -> Attribution:
    """Who, in which request and which trace: stored on every item a request writes. API Gateway's
    request id is the key; the trace id is a lead, marked when the client started the trace."""
    context = app.current_event.request_context
    trace_id, span_id = current_trace()
    from_client = trace_started_before(trace_id, context.get("requestTimeEpoch"))
    return Attribution(principal.sub, context.request_id or "", trace_id, span_id, from_client)


# API Gateway starts a trace at the second it receives the request; a trace begun more than this
# before it was begun by the caller, who sent its X-Amzn-Trace-Id (API Gateway continues it).
CLIENT_TRACE_LEAD_SECONDS = 2


def trace_started_before(trace_id: str, received_ms: Any) -> bool:
    """Whether an X-Ray trace (`1-<start, epoch seconds in hex>-<random>`) began before the request
    reached API Gateway, or cannot be read: then a client chose it. The Lambda event does not say who
    started the trace, so its own start time does. A client can still name a fresh-looking root, but
    not one that ties its request to an older trace without being marked."""
    if not isinstance(received_ms, int | float):
        return False
    parts = trace_id.split("-")
    if len(parts) != 3 or parts[0] != "1":
        return bool(trace_id)
    try:
        started = int(parts[1], 16)
    except ValueError:
        return True
    return abs(received_ms / 1000 - started) > CLIENT_TRACE_LEAD_SECONDS


def require_ordered(start: Any, end: Any) -> None:
    """A window `from` … `to` whose end is not before its start: DynamoDB refuses a BETWEEN whose
    bounds are reversed (a 500 had it got there), so it is the client's mistake, named."""
    if start is not None and end is not None and end < start:
        raise ValidationFailedError(
            "The window ends before it starts.", [FieldError("query.to", "must not be before from")]
        )


_ETAG = re.compile(r'(?:W/)?"([0-9]{1,15})"', re.ASCII)  # 15 digits: more than any version reaches


def expected_version(app: APIGatewayRestResolver) -> int | None:
    """The version an `If-Match` header names, in the form the API's ETags have (`"3"`, or `W/"3"` as a
    cache may weaken it); None without the header. Anything else is the client's mistake (400): not
    `3` unquoted, not `"²"` (a digit to Python, not to the API), not more digits than a version has."""
    headers = app.current_event.headers
    # Present but empty is not absent: an empty If-Match names no version, and is refused below.
    raw = headers.get("If-Match") if "If-Match" in headers else headers.get("if-match")
    if raw is None:
        return None
    found = _ETAG.fullmatch(raw.strip())
    if found is None:
        raise ValidationFailedError(
            "If-Match must name a version.", [FieldError("header.If-Match", 'must be an ETag such as "3"')]
        )
    return int(found.group(1))


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def plus_restored(value: Any) -> Any:
    """An unencoded "+" in a query string arrives as a space: "09:00:00 01:00" meant "09:00:00+01:00"."""
    return value.replace(" ", "+") if isinstance(value, str) else value


def percent_decoded(value: Any) -> Any:
    """A path parameter as the client spelt it: API Gateway (REST) passes a Lambda proxy the path's
    segments as they came, percent-encoded ("zo%C3%AB" for "zoë"). Bytes that are not UTF-8 are a
    ValueError, so the parameter is refused by name."""
    return unquote(value, errors="strict") if isinstance(value, str) else value


def resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`app.resolve`, after refusing a body declared as anything but JSON with 415 (none declared reads as
    JSON); every answer, refusals included, carries the stage's CORS headers (`services/common/cors.py`).

    Powertools would parse form and multipart bodies (and fail on some with a 500); this API takes JSON only.
    """
    return with_cors(_resolve(app, event, context), event, cors_policy())


def cors_policy() -> CorsPolicy:
    """The stage's CORS policy, from the function's `ALLOWED_ORIGINS` (the stack's `AllowedOrigins`)."""
    return CorsPolicy.from_text(load_settings(ServiceSettings).allowed_origins)


def with_cors(answer: dict[str, Any], event: dict[str, Any], policy: CorsPolicy) -> dict[str, Any]:
    """`answer` with the CORS headers for the request's `Origin`.

    By hand rather than Powertools' `CORSConfig`: that one adds no `Vary: Origin`, and reaches neither
    the 415 above nor the not-found answer, which a page must be able to read as well."""
    added = policy.response_headers(header(event.get("headers"), "Origin"))
    if not added:
        return answer
    multi = answer.get("multiValueHeaders")
    if isinstance(multi, dict):
        for name, value in added.items():
            multi[name] = [value]
    else:
        answer["headers"] = {**(answer.get("headers") or {}), **added}
    return answer


def _resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    content_type = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    if event.get("body") and content_type and not _JSON_TYPE.fullmatch(content_type):
        request_id = (event.get("requestContext") or {}).get("requestId")
        problem = Problem(
            415, "UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.", request_id=request_id
        )
        return {
            "statusCode": 415,
            "headers": {"Content-Type": PROBLEM_JSON},
            "body": json.dumps(problem.to_json()),
            "isBase64Encoded": False,
        }
    return app.resolve(event, context)
