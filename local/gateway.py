"""The local API Gateway: a REST API on 127.0.0.1 that invokes the functions with real proxy events.

For each request it finds the route in the OpenAPI document, enforces the Cognito authorizer on
secured routes, builds an API Gateway REST (payload v1) proxy event, invokes the integrated function
through the local Lambda service, and turns the function's answer into the HTTP response, or into
the gateway response API Gateway would send (401, 404, 413, 502, 503, …). One JSON access-log line
per request, in the fields API Gateway's access logging offers.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from local import auth
from local.api import ApiDefinition, GatewayResponse, Route
from local.provision import ACCOUNT_ID
from local.runtime import LambdaService, Throttled, new_trace_header

MAX_BODY_BYTES = 6 * 1024 * 1024  # the smaller of API Gateway's 10 MB and Lambda's 6 MB request payload
INTEGRATION_TIMEOUT_SECONDS = 29.0
API_ID = "appointmentslocal"
_TEXT_TYPES = ("application/json", "application/problem+json", "text/", "application/x-www-form-urlencoded")


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query as sent
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    malformed: bool = False  # the body could not be read (bad Content-Length or chunk framing)
    wire_length: int | None = None  # bytes the client sent, when more than `body` keeps (oversize)

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # What the access log reports about the integration, when there was one.
    integration_latency_ms: float | None = None
    integration_status: int | None = None
    error_message: str | None = None
    sub: str | None = None


def trace_header(incoming: str | None) -> str:
    """Continue the caller's X-Ray trace if it sent one, as API Gateway does; otherwise start one."""
    if incoming and "Root=" in incoming:
        fields = dict(part.split("=", 1) for part in incoming.split(";") if "=" in part)
        sampled = fields.get("Sampled", "1")
        return f"Root={fields['Root']};Parent={uuid.uuid4().hex[:16]};Sampled={sampled}"
    return new_trace_header()


def build_event(
    request: HttpRequest,
    route: Route,
    path_parameters: dict[str, str],
    *,
    request_id: str,
    stage: str,
    claims: dict[str, str] | None,
    trace: str,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0) for `request`."""
    split = urlsplit(request.target)
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in [*request.headers, ("X-Amzn-Trace-Id", trace)]:
        if name.lower() == "x-amzn-trace-id":
            name, value = "X-Amzn-Trace-Id", trace
            multi_headers.pop(name, None)
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    content_type = (request.header("content-type") or "application/json").lower()
    is_text = any(content_type.startswith(kind) for kind in _TEXT_TYPES)
    body: str | None
    encoded = False
    if not request.body:
        body = None
    elif is_text:
        body = request.body.decode("utf-8", "replace")
    else:
        body, encoded = base64.b64encode(request.body).decode(), True
    now = datetime.now(UTC)
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": request.header("host") or "127.0.0.1",
        "domainPrefix": API_ID,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "httpMethod": request.method,
        "path": f"/{stage}{split.path}",
        "protocol": request.protocol,
        "requestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, route.resource).hex[:6],
        "resourcePath": route.resource,
        "stage": stage,
        "identity": {
            "sourceIp": request.source_ip,
            "userAgent": request.header("user-agent"),
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "user": None,
            "userArn": None,
        },
    }
    if claims is not None:
        request_context["authorizer"] = {"claims": claims}
    return {
        "resource": route.resource,
        "path": split.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": encoded,
    }


class MalformedIntegrationResponse(ValueError):
    """The function answered something that is not a proxy integration response."""


def proxy_response(result: Any) -> HttpResponse:
    """The HTTP response a function's proxy-integration answer describes."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise MalformedIntegrationResponse("Malformed Lambda proxy response")
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise MalformedIntegrationResponse("Malformed Lambda proxy response: body is not a string")
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return HttpResponse(status=result["statusCode"], headers=headers, body=raw)


class Gateway:
    """Turns HTTP requests into function invocations, as API Gateway's REST proxy does."""

    def __init__(
        self,
        api: ApiDefinition,
        lambdas: LambdaService,
        key: auth.KeyPair,
        *,
        stage: str = "local",
        access_log: Path | None = None,
        echo: Callable[[str], None] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        on_access: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.api = api
        self.lambdas = lambdas
        self.key = key
        self.stage = stage
        self.max_body_bytes = max_body_bytes
        self._echo = echo
        self._on_access = on_access  # e.g. the metric store: API Gateway's metrics from each request
        self._log_lock = threading.Lock()
        self._access_log: IO[str] | None = None
        if access_log is not None:
            access_log.parent.mkdir(parents=True, exist_ok=True)
            self._access_log = open(access_log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._local_routes: dict[tuple[str, str], Callable[[HttpRequest], HttpResponse]] = {
            ("POST", "/_local/token"): self._mint_token,
            ("GET", "/docs"): self._docs,
            ("GET", "/docs/swagger-ui-bundle.min.js"): self._swagger_asset,
            ("GET", "/docs/swagger-ui.min.css"): self._swagger_asset,
        }

    def add_local_route(self, method: str, path: str, handler: Callable[[HttpRequest], HttpResponse]) -> None:
        """A route of the local stack itself (status pages, tools); never part of the deployed API, so
        never in the access log or the API's metrics. A path ending in `/*` takes everything under it."""
        self._local_routes[(method, path)] = handler

    def _local_route(self, method: str, path: str) -> Callable[[HttpRequest], HttpResponse] | None:
        exact = self._local_routes.get((method, path))
        if exact is not None:
            return exact
        prefixes = [p for m, p in self._local_routes if m == method and p.endswith("/*") and path.startswith(p[:-1])]
        return self._local_routes[(method, max(prefixes, key=len))] if prefixes else None

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request and write its access-log line."""
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        resource = "-"
        try:
            response, resource = self._dispatch(request, request_id)
        except Exception as error:  # the gateway itself must never drop a connection without an answer
            response = self._gateway_response("DEFAULT_5XX", f"Gateway error: {error}", request_id, 500)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        response.headers["Content-Length"] = str(len(response.body))
        if self._local_route(request.method, urlsplit(request.target).path) is None:
            self._log_access(request, response, request_id, resource, (time.perf_counter() - started) * 1000)
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
                verified = auth.verify(self.key, request.header("authorization"))
            except auth.AuthenticationError as refusal:
                return self._gateway_response("UNAUTHORIZED", str(refusal), request_id), route.resource
            claims = auth.claims_for_event(verified)
        if route.integration == "mock":
            # The only mock integration is the API description itself.
            return self._openapi(request), route.resource
        trace = trace_header(request.header("x-amzn-trace-id"))
        event = build_event(
            request, route, parameters, request_id=request_id, stage=self.stage, claims=claims, trace=trace
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

    # Local-only routes: never part of the deployed API.

    def _mint_token(self, request: HttpRequest) -> HttpResponse:
        try:
            body = json.loads(request.body or b"{}")
            sub = body["sub"]
            groups = body.get("groups", [])
            ttl = int(body.get("ttlSeconds", auth.DEFAULT_TTL_SECONDS))
            if not isinstance(sub, str) or not sub or not isinstance(groups, list) or ttl <= 0:
                raise ValueError("sub must be a non-empty string, groups a list, ttlSeconds positive")
        except (ValueError, KeyError, TypeError) as error:
            problem = {
                "type": "about:blank",
                "title": "Bad Request",
                "status": 400,
                "code": "VALIDATION_FAILED",
                "detail": f"Expected {{sub, groups}}: {error}",
                "errors": [{"field": "body", "message": str(error)}],
            }
            return HttpResponse(400, {"Content-Type": "application/problem+json"}, json.dumps(problem).encode())
        token = auth.mint(self.key, sub, [str(g) for g in groups], ttl)
        return _json(200, {"token": token, "expiresIn": ttl, "tokenType": "Bearer"})

    def _openapi(self, _request: HttpRequest) -> HttpResponse:
        return _json(200, self.api.public_document())

    def _docs(self, request: HttpRequest) -> HttpResponse:
        from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

        if ("format", "json") in parse_qsl(urlsplit(request.target).query):
            return self._openapi(request)  # the page links its document here

        page = generate_swagger_html(
            json.dumps(self.api.public_document()),
            "/docs/swagger-ui-bundle.min.js",
            "/docs/swagger-ui.min.css",
            swagger_base_url="/docs",
            oauth2_config=None,
            persist_authorization=True,
        )
        return HttpResponse(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())

    def _swagger_asset(self, request: HttpRequest) -> HttpResponse:
        name = urlsplit(request.target).path.rsplit("/", 1)[-1]
        package = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
        content_type = "text/css" if name.endswith(".css") else "text/javascript"
        return HttpResponse(
            200, {"Content-Type": content_type, "Cache-Control": "max-age=3600"}, package.joinpath(name).read_bytes()
        )

    def _log_access(
        self, request: HttpRequest, response: HttpResponse, request_id: str, resource: str, latency_ms: float
    ) -> None:
        record = {
            "requestId": request_id,
            "ip": request.source_ip,
            "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "httpMethod": request.method,
            "resourcePath": resource,
            "path": urlsplit(request.target).path,
            "status": response.status,
            "protocol": request.protocol,
            "responseLength": len(response.body),
            "responseLatency": round(latency_ms, 2),
            "integrationLatency": round(response.integration_latency_ms, 2)
            if response.integration_latency_ms is not None
            else None,
            "integrationStatus": response.integration_status,
            "errorMessage": response.error_message,
            "userAgent": request.header("user-agent"),
            "sub": response.sub,
        }
        line = json.dumps(record)
        with self._log_lock:
            if self._access_log is not None:
                self._access_log.write(line + "\n")
        if self._on_access is not None:
            self._on_access(record)
        if self._echo is not None:
            self._echo(line)

    def close(self) -> None:
        with self._log_lock:
            if self._access_log is not None:
                self._access_log.close()
                self._access_log = None


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"
    server_version = "appointments-local-gateway"

    def _serve(self) -> None:
        malformed = False
        try:
            body, length = self._read_body()
        except ValueError:
            body, length, malformed = b"", 0, True
            self.close_connection = True  # the rest of the stream cannot be trusted
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            malformed=malformed,
            wire_length=length,
        )
        response = self.gateway.handle(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> tuple[bytes, int]:
        """The request body (fixed-length or chunked) and its length; an oversize body is read and dropped."""
        limit = self.gateway.max_body_bytes
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length <= limit:
            return (self.rfile.read(length) if length else b""), length
        # Drain it so the client reads the 413 instead of a broken pipe; the gateway refuses it.
        remaining = length
        while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 20))):
            remaining -= len(chunk)
        return b"", length

    def _read_chunked(self, limit: int) -> tuple[bytes, int]:
        parts: list[bytes] = []
        total = 0
        while (size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"x", 16)) > 0:
            chunk = self.rfile.read(size)
            self.rfile.readline(1024)  # the CRLF after each chunk
            total += size
            if total <= limit:
                parts.append(chunk)
        while self.rfile.readline(1024).strip():  # trailers, up to the blank line
            pass
        return (b"".join(parts) if total <= limit else b""), total

    def __getattr__(self, name: str) -> Any:
        # Every method, TRACE and inventions included, reaches the gateway: it answers what API Gateway would.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the gateway writes its own access log."""


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 resets connections when many clients arrive at once
    request_queue_size = 128


class GatewayServer:
    """The gateway on a loopback port, serving on a background thread."""

    def __init__(self, gateway: Gateway, port: int, host: str = "127.0.0.1") -> None:
        handler = type("Handler", (_RequestHandler,), {"gateway": gateway})
        self.server = _Server((host, port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
