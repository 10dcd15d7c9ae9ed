"""The API as `cloudformation/api/openapi.yaml` defines it: routes, integrations, auth, gateway responses.

The local gateway serves exactly the document packaging ships for API Gateway to import
(`deploy/openapi.py: shipped_document`), read by API Gateway's rules: a path or method that is not in
it does not exist locally either, and only an operation's own `security` secures it (API Gateway
ignores a root-level one). Clients read the whole document, as written, at `/openapi.json`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.openapi import NOT_CUSTOMIZABLE, OPENAPI_PATH, load_document, public_document, shipped_document
from deploy.templates import TEMPLATES, load_template
from local.cloudformation.resolver import resolver_for

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_FUNCTION_ARN = re.compile(r"\$\{(\w+?)Arn\}")
# API Gateway's own status for each response type the local gateway raises, when the document sets none.
_DEFAULT_STATUS = {
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "BAD_REQUEST_PARAMETERS": 400,
    "BAD_REQUEST_BODY": 400,
    "REQUEST_TOO_LARGE": 413,
    "THROTTLED": 429,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "DEFAULT_4XX": 400,
    "DEFAULT_5XX": 502,
}


@dataclass(frozen=True)
class Route:
    """One API operation: the method, the resource path template and where it is integrated."""

    method: str
    resource: str
    pattern: re.Pattern[str]
    integration: str  # "aws_proxy" or "mock"
    function: str | None  # logical id of the integrated function
    secured: bool
    operation_id: str
    # The operation's x-amazon-apigateway-integration, as the stage resolves it (the mock's templates).
    integration_spec: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _path_pattern(resource: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", resource):
        if part.startswith("{") and part.endswith("+}"):
            pattern += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            pattern += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(pattern)


def _integrated_function(integration: dict[str, Any]) -> str | None:
    uri = integration.get("uri")
    text = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri or "")
    found = _FUNCTION_ARN.search(text if isinstance(text, str) else text[0])
    return found.group(1) if found else None


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def for_stage(document: dict[str, Any], allowed_origins: str) -> dict[str, Any]:
    """The shipped document with what the api stack's parameters decide filled in, as CloudFormation
    fills it in: the CORS headers of the gateway responses (`Fn::If` on its CorsEnabled condition) and
    the preflight templates (`Fn::Sub` of AllowedOrigins), resolved with the stack's own conditions."""
    template = load_template(TEMPLATES / "api.yaml")
    # Parameters the fragments never read (function ARNs, the user pool) only need a value.
    unread = {name: "local" for name, spec in template["Parameters"].items() if "Default" not in spec}
    resolver = resolver_for(template, {**unread, "AllowedOrigins": allowed_origins})
    staged = dict(document)
    if "x-amazon-apigateway-gateway-responses" in document:
        staged["x-amazon-apigateway-gateway-responses"] = resolver.resolve(
            document["x-amazon-apigateway-gateway-responses"]
        )
    staged["paths"] = {
        resource: {
            method: (
                {**operation, "x-amazon-apigateway-integration": resolver.resolve(operation[_INTEGRATION])}
                if method == "options" and isinstance(operation, dict) and _INTEGRATION in operation
                else operation
            )
            for method, operation in item.items()
        }
        for resource, item in document.get("paths", {}).items()
    }
    return staged


_INTEGRATION = "x-amazon-apigateway-integration"


class ApiDefinition:
    """The parsed OpenAPI document, as one stage's parameters resolve it (`for_stage`)."""

    def __init__(
        self, document: dict[str, Any], public: dict[str, Any] | None = None, *, allowed_origins: str = ""
    ) -> None:
        self.document = for_stage(document, allowed_origins)
        self.public = public if public is not None else public_document(document)
        self.routes = self._routes()

    @classmethod
    def load(cls, path: Path = OPENAPI_PATH, *, allowed_origins: str = "") -> ApiDefinition:
        """The shipped document, and the public view of the document as written."""
        return cls(shipped_document(path), public_document(load_document(path)), allowed_origins=allowed_origins)

    def _routes(self) -> list[Route]:
        routes = []
        for resource, item in self.document["paths"].items():
            for method in _METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                integration = operation.get(_INTEGRATION, {})
                routes.append(
                    Route(
                        method=method.upper(),
                        resource=resource,
                        pattern=_path_pattern(resource),
                        integration=integration.get("type", "aws_proxy"),
                        function=_integrated_function(integration),
                        # "API Gateway doesn't use root level security defined in the OpenAPI
                        # specification" (api-gateway-known-issues.html): an operation without its
                        # own `security` has no authorizer.
                        secured=bool(operation.get("security")),
                        operation_id=operation.get("operationId", f"{method} {resource}"),
                        integration_spec=integration,
                    )
                )
        # API Gateway prefers literal segments over parameters: longest literal prefix first.
        routes.sort(key=lambda r: (r.resource.count("{"), -len(r.resource)))
        return routes

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request, with its path parameters; None when no resource/method matches."""
        for route in self.routes:
            if route.method != method:
                continue
            parameters = route.match(path)
            if parameters is not None:
                return route, parameters
        return None

    def public_document(self) -> dict[str, Any]:
        """The document clients see: as written, API Gateway's own extensions removed."""
        return self.public

    def gateway_response(
        self,
        response_type: str,
        message: str,
        request_id: str,
        status: int | None = None,
        validation_errors: str = "",
    ) -> GatewayResponse:
        """Render a gateway response as API Gateway would from the document's configuration.

        The type's own configuration, else its family's (DEFAULT_4XX or DEFAULT_5XX); the status code
        the type's own, else the family's (API Gateway documents that a status set on DEFAULT_4XX or
        DEFAULT_5XX applies to every other type of the family), else API Gateway's default for the
        type; headers only from `responseParameters` (API Gateway's default content type is
        application/json); the template's `$context` variables substituted."""
        if response_type in NOT_CUSTOMIZABLE:
            fixed_status, fixed_message = NOT_CUSTOMIZABLE[response_type]
            fixed = json.dumps({"message": fixed_message}).encode()
            return GatewayResponse(fixed_status, {"Content-Type": "application/json"}, fixed)
        configured = self.document.get("x-amazon-apigateway-gateway-responses", {})
        own_status = status or _DEFAULT_STATUS.get(response_type, 500)
        family = "DEFAULT_5XX" if own_status >= 500 else "DEFAULT_4XX"
        own = configured.get(response_type) or {}
        inherited = configured.get(family) or {}
        spec = own or inherited
        code = int(own.get("statusCode", inherited.get("statusCode", own_status)))
        headers = {"Content-Type": "application/json"}
        for name, value in spec.get("responseParameters", {}).items():
            headers[name.removeprefix("gatewayresponse.header.")] = str(value).strip("'")
        template = spec.get("responseTemplates", {}).get("application/json")
        if template is None:
            body = json.dumps({"message": message})
        else:
            body = (
                template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .replace("$context.error.responseType", response_type)
                .replace("$context.error.validationErrorString", validation_errors)
                .replace("$context.requestId", request_id)
            )
        return GatewayResponse(code, headers, body.encode())
