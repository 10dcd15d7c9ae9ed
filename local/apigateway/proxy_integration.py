"""API Gateway's Lambda proxy integration (REST, payload format 1.0): the event a function receives
and the answer it must give.

`build_event` writes the proxy event for a request: headers and query strings single- and
multi-valued, the body as text or base64 by content type, and the request context (stage, resource,
identity, the authorizer's claims). `proxy_response` reads the function's answer as API Gateway does;
anything that is not a proxy response is a `MalformedIntegrationResponse` (API Gateway's 502).
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.account import ACCOUNT_ID
from local.apigateway.api import Route
from local.apigateway.http_messages import HttpRequest, HttpResponse

API_ID = "appointmentslocal"
_TEXT_TYPES = ("application/json", "application/problem+json", "text/", "application/x-www-form-urlencoded")


def build_event(
    request: HttpRequest,
    route: Route,
    path_parameters: dict[str, str],
    *,
    request_id: str,
    stage: str,
    claims: dict[str, str] | None,
    trace: str,
    now: float | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0) for `request`."""
    split = urlsplit(request.target)
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    # API Gateway sets X-Forwarded-Proto and -Port to how the client reached it (here plain HTTP on
    # the stack's port: a URL the API hands out is built from them) and appends the client's address
    # to X-Forwarded-For.
    sent_for = request.header("x-forwarded-for")
    forwarded = {
        "X-Forwarded-For": f"{sent_for}, {request.source_ip}" if sent_for else request.source_ip,
        "X-Forwarded-Proto": "http",
    }
    host = request.header("host") or ""
    if ":" in host:
        forwarded["X-Forwarded-Port"] = host.rsplit(":", 1)[1]
    from_client = [(n, v) for n, v in request.headers if n.lower() not in {k.lower() for k in forwarded}]
    for name, value in [*from_client, *forwarded.items(), ("X-Amzn-Trace-Id", trace)]:
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
    received = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": request.header("host") or "127.0.0.1",
        "domainPrefix": API_ID,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "httpMethod": request.method,
        # The path the client asked for, as on AWS (where an execute-api URL holds the stage: here none does).
        "path": split.path,
        "protocol": request.protocol,
        "requestId": request_id,
        "requestTime": received.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(received.timestamp() * 1000),
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
