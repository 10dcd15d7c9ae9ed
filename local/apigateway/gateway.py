"""The local API Gateway: the REST API that invokes the functions with real proxy events.

For each request it finds the route in the OpenAPI document, enforces the Cognito authorizer on
secured routes, applies the document's request validator (`request_validator.py`), builds an API
Gateway REST (payload v1) proxy event, invokes the integrated function through the local Lambda
service, and turns the function's answer into the HTTP response, or into the gateway response API
Gateway would send (400, 401, 404, 413, 502, 503, …). The CORS preflight (`OPTIONS`) is a mock
integration it answers from the document's templates without a function (`mock_integration.py`).
Before all that, the stage's web ACL (`local/wafv2/`) may block the request, as WAF does before API
Gateway sees it. One access-log line per request API Gateway handles; the local stack's own routes
(`add_local_route`) and requests the WAF blocked stay out of it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local.apigateway.access_log import AccessLog
from local.apigateway.api import ApiDefinition, GatewayResponse, Route
from local.apigateway.authorizer import AuthenticationError, claims_for_event, verify
from local.apigateway.developer_routes import developer_routes
from local.apigateway.http_messages import HttpRequest, HttpResponse, LocalRoute, json_response
from local.apigateway.mock_integration import mock_response
from local.apigateway.proxy_integration import MalformedIntegrationResponse, build_event, proxy_response
from local.apigateway.request_validator import RequestValidator
from local.cognito.user_pool import UserPools
from local.lambda_runtime.function_runtime import Throttled
from local.lambda_runtime.service import LambdaService
from local.wafv2.web_acl import WebAcl
from local.xray.trace_header import trace_header

MAX_BODY_BYTES = 6 * 1024 * 1024  # the smaller of API Gateway's 10 MB and Lambda's 6 MB request payload
INTEGRATION_TIMEOUT_SECONDS = 29.0


class Gateway:
    """Turns HTTP requests into function invocations, as API Gateway's REST proxy does."""

    def __init__(
        self,
        api: ApiDefinition,
        lambdas: LambdaService,
        user_pools: UserPools,
        *,
        stage: str = "local",
        access_log: Path | None = None,
        echo: Callable[[str], None] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        on_access: Callable[[dict[str, Any]], None] | None = None,
        now: Callable[[], float] = time.time,
        web_acl: WebAcl | None = None,
    ) -> None:
        self.api = api
        self.web_acl = web_acl
        self.lambdas = lambdas
        self.user_pools = user_pools
        self.stage = stage
        self.max_body_bytes = max_body_bytes
        self.validator = RequestValidator(api.document)
        self._now = now  # the stack's clock: token expiry and request times are judged in its time
        self._access_log = AccessLog(access_log, echo=echo, on_access=on_access, now=now)
        self._local_routes: dict[tuple[str, str], LocalRoute] = developer_routes(api, user_pools, now)

    def add_local_route(self, method: str, path: str, handler: LocalRoute) -> None:
        """A route of the local stack itself (status pages, tools); never part of the deployed API, so
        never in the access log or the API's metrics. A path ending in `/*` takes everything under it."""
        self._local_routes[(method, path)] = handler

    def _local_route(self, method: str, path: str) -> LocalRoute | None:
        exact = self._local_routes.get((method, path))
        if exact is not None:
            return exact
        prefixes = [p for m, p in self._local_routes if m == method and p.endswith("/*") and path.startswith(p[:-1])]
        return self._local_routes[(method, max(prefixes, key=len))] if prefixes else None

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request and write its access-log line."""
        is_api = self._local_route(request.method, urlsplit(request.target).path) is None
        blocked = self.web_acl.evaluate(request.source_ip) if is_api and self.web_acl is not None else None
        if blocked is not None:
            # WAF answered: API Gateway never saw the request (no request id, no log line, no API metric).
            blocked.headers["Content-Length"] = str(len(blocked.body))
            return blocked
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        resource = "-"
        try:
            response, resource = self._dispatch(request, request_id)
        except Exception as error:  # the gateway itself must never drop a connection without an answer
            response = self._gateway_response("DEFAULT_5XX", f"Gateway error: {error}", request_id, 500)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        response.headers["Content-Length"] = str(len(response.body))
        if is_api:
            latency_ms = (time.perf_counter() - started) * 1000
            self._access_log.write(request, response, request_id, resource, latency_ms)
        return response

    def _dispatch(self, request: HttpRequest, request_id: str) -> tuple[HttpResponse, str]:
        path = urlsplit(request.target).path
        if request.malformed:
            return self._gateway_response("BAD_REQUEST_BODY", "The request body is malformed", request_id), "-"
        length = request.wire_length if request.wire_length is not None else len(request.body)
        if length > self.max_body_bytes:
            message = f"Request body of {length} bytes exceeds the {self.max_body_bytes} byte limit"
            return self._gateway_response("REQUEST_TOO_LARGE", message, request_id), "-"
        local = self._local_route(request.method, path)
        if local is not None:
            return local(request), path
        found = self.api.find(request.method, path)
        if found is None:
            return self._gateway_response(
                "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id
            ), "-"
        route, parameters = found
        claims: dict[str, str] | None = None
        if route.secured:
            try:
                verified = verify(self.user_pools, request.header("authorization"), now=self._now())
            except AuthenticationError as refusal:
                return self._gateway_response("UNAUTHORIZED", str(refusal), request_id), route.resource
            claims = claims_for_event(verified)
        invalid = self.validator.check(route.method, route.resource, request, parameters)
        if invalid is not None:
            response = self._gateway_response(invalid.response_type, invalid.message, request_id)
            if invalid.details:  # API Gateway logs what the model said; the client reads only the message
                response.error_message = f"{invalid.message}: {'; '.join(invalid.details)}"
            return response, route.resource
        if route.integration == "mock" and route.method == "OPTIONS":
            return mock_response(route.integration_spec, request, request_id, parameters), route.resource
        if route.integration == "mock":
            # The other mock integration is the API description itself.
            return json_response(200, self.api.public_document()), route.resource
        trace = trace_header(request.header("x-amzn-trace-id"), now=self._now())
        event = build_event(
            request,
            route,
            parameters,
            request_id=request_id,
            stage=self.stage,
            claims=claims,
            trace=trace,
            now=self._now(),
        )
        response = self._invoke(route, event, request_id, trace)
        response.headers.setdefault("X-Amzn-Trace-Id", trace)
        response.sub = claims.get("sub") if claims else None
        return response, route.resource

    def _invoke(self, route: Route, event: dict[str, Any], request_id: str, trace: str) -> HttpResponse:
        runtime = self.lambdas.functions.get(route.function or "")
        if runtime is None:
            message = f"No function {route.function} integrated with {route.operation_id}"
            return self._gateway_response("DEFAULT_5XX", message, request_id, 500)
        started = time.perf_counter()
        try:
            invocation = runtime.invoke(event, request_id=str(uuid.uuid4()), trace_id=trace)
        except Throttled:
            response = self._gateway_response("INTEGRATION_FAILURE", "Rate Exceeded.", request_id)
            response.integration_status = 429
            response.error_message = "Lambda throttled"
            return response
        latency = (time.perf_counter() - started) * 1000
        if invocation.failed:
            assert invocation.error is not None
            timed_out = invocation.error.get("errorType") == "Sandbox.Timedout"
            response = self._gateway_response("DEFAULT_5XX", "Internal server error", request_id)
            response.error_message = f"{invocation.error.get('errorType')}: {invocation.error.get('errorMessage')}"
            response.integration_status = 200
            if timed_out and latency / 1000 >= INTEGRATION_TIMEOUT_SECONDS:
                response = self._gateway_response("INTEGRATION_TIMEOUT", "Endpoint request timed out", request_id)
        else:
            try:
                response = proxy_response(invocation.payload)
                response.integration_status = 200
            except MalformedIntegrationResponse as error:
                response = self._gateway_response("DEFAULT_5XX", "Internal server error", request_id)
                response.error_message = str(error)
        response.integration_latency_ms = latency
        return response

    def _gateway_response(
        self, response_type: str, message: str, request_id: str, status: int | None = None
    ) -> HttpResponse:
        rendered: GatewayResponse = self.api.gateway_response(response_type, message, request_id, status)
        return HttpResponse(rendered.status, dict(rendered.headers), rendered.body, error_message=message)

    def close(self) -> None:
        self._access_log.close()
