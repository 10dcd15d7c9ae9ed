"""The API document, `cloudformation/api/openapi.yaml`: what API Gateway imports and what clients read.

One document serves both. Clients get it whole, without API Gateway's `x-amazon-apigateway-*`
extensions, at `/openapi.json` and `/docs` (`public_document`). API Gateway imports it with those
extensions (integrations, authorizer, validators, gateway responses), as its importer takes it
(`deployed_document`), and the local gateway routes with exactly that (`local/apigateway/`).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

from deploy.templates import TEMPLATES, SafeLoader
from services.common.cors import ALLOWED_HEADERS, MAX_AGE_SECONDS

OPENAPI_PATH = TEMPLATES / "api" / "openapi.yaml"
VTL_DOLLAR = "#set($dollar = '$')\n"
# Velocity (API Gateway's template language) would run these directives in the embedded document;
# its `$`s are taken care of by VTL_DOLLAR.
_VTL_DIRECTIVE = re.compile(
    r"##|#\*|#\{?(?:set|if|elseif|else|end|foreach|break|stop|macro|define|evaluate|parse|include)\b"
)


class DocumentError(ValueError):
    """The document cannot be shipped as it is."""


def load_document(path: Path = OPENAPI_PATH) -> dict[str, Any]:
    """The document as written, API Gateway's extensions included."""
    with open(path, encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.load(handle, Loader=SafeLoader)
    return document


def public_document(document: dict[str, Any]) -> dict[str, Any]:
    """The document clients see: API Gateway's own extensions removed."""
    public: dict[str, Any] = _without_gateway_extensions(copy.deepcopy(document))
    return public


_SCHEMA_MAPS = {"properties", "patternProperties", "definitions"}  # name → schema, names are data

# What API Gateway's importer does not support in a model, from "Amazon API Gateway important notes
# for REST APIs" (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-known-issues.html):
# "The additionalProperties and anyOf fields are not supported in Models", "The discriminator
# parameter is not supported in any schema object", "The example tag is not supported",
# "exclusiveMinimum is not supported", "oneOf is not supported", "The readOnly field is not
# supported". `nullable` and `deprecated` are OpenAPI's, not JSON Schema draft 4's. With the
# RestApi's `FailOnWarnings`, any of them would roll the first deploy back.
UNSUPPORTED_IN_MODELS = frozenset(
    {"additionalProperties", "anyOf", "discriminator", "example", "exclusiveMinimum", "oneOf", "readOnly",
     "nullable", "deprecated"}
)  # fmt: skip
# "Numbers of the Int32 or Int64 type are not supported", nor `"format": "decimal"` (same page).
UNSUPPORTED_FORMATS = frozenset({"int32", "int64", "decimal"})
# "For input parameters, only the following attributes are supported: name, in, required, type,
# description. Other attributes are ignored" (same page): OpenAPI 3 gives the type in `schema`.
PARAMETER_ATTRIBUTES = ("name", "in", "required", "description")
# Gateway responses API Gateway answers its own way whatever the document says: "Customizing the
# default gateway response for 413 REQUEST_TOO_LARGE isn't currently supported" (same page).
NOT_CUSTOMIZABLE = {"REQUEST_TOO_LARGE": (413, "Request Too Long")}


def model_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as the JSON Schema draft 4 model API Gateway's importer accepts.

    `{type: t, nullable: true}` becomes `{type: [t, "null"]}` (a schema that is only `nullable`
    accepts anything, as it did); what the importer does not support goes (`UNSUPPORTED_IN_MODELS`),
    so the gateway checks less than the document says and the functions check the rest."""
    if isinstance(schema, list):
        return [model_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key in UNSUPPORTED_IN_MODELS or (key == "format" and value in UNSUPPORTED_FORMATS):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            converted[key] = {name: model_schema(item) for name, item in value.items()}
        else:
            converted[key] = model_schema(value)
    if schema.get("nullable") is True and "type" in converted:
        types = converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
        converted["type"] = types if "null" in types else [*types, "null"]
    return converted


def deployed_document(document: dict[str, Any]) -> dict[str, Any]:
    """The document as API Gateway's importer takes it, and as the local gateway serves it.

    Models (`components.schemas` and the bodies' inline schemas) become draft 4 models the importer
    supports; parameters keep only the attributes it reads (presence is all its validator checks:
    the functions validate patterns and ranges). Responses lose their `links` (what a client does
    next): API Gateway has no use for them, and leaving them out means no importer warning about
    them can roll a deploy back. Security is left where the document puts it: API Gateway reads it
    per operation only (the deploy check, `deploy/checks.py`, holds that)."""
    deployed: dict[str, Any] = copy.deepcopy(document)
    components = deployed.get("components", {})
    if "schemas" in components:
        components["schemas"] = {name: model_schema(schema) for name, schema in components["schemas"].items()}
    for shared_response in components.get("responses", {}).values():
        shared_response.pop("links", None)
    for shared in components.get("parameters", {}).values():
        _importable_parameter(shared)
    for item in deployed.get("paths", {}).values():
        for parameter in item.get("parameters", []):
            _importable_parameter(parameter)
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                _importable_parameter(parameter)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                if "schema" in media:
                    media["schema"] = model_schema(media["schema"])
            for response in operation.get("responses", {}).values():
                response.pop("links", None)
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        media["schema"] = model_schema(media["schema"])
    return deployed


def shipped_document(path: Path = OPENAPI_PATH) -> dict[str, Any]:
    """What packaging ships for API Gateway to import, and what the local gateway serves: the deployed
    document, with `/openapi.json` (a mock) answering the public document.

    The answer is a Velocity template: every `$` of the document (its `$ref`s) is written as
    `${dollar}`, a variable holding "$", so that nothing in it is read as a reference."""
    document = load_document(path)
    public = json.dumps(public_document(document), separators=(",", ":"), ensure_ascii=False)
    found = _VTL_DIRECTIVE.search(public)
    if found:
        raise DocumentError(f"the public document has {found.group(0)!r}, which API Gateway's templates would run")
    shipped = with_cors(deployed_document(document))
    mock = shipped["paths"]["/openapi.json"]["get"]["x-amazon-apigateway-integration"]
    mock["responses"]["default"]["responseTemplates"] = {
        "application/json": VTL_DOLLAR + public.replace("$", "${dollar}")
    }
    return shipped


# The api stack's condition "AllowedOrigins is not empty" (cloudformation/api.yaml): CORS on.
CORS_CONDITION = "CorsEnabled"
_NO_VALUE = {"Ref": "AWS::NoValue"}
# What a gateway response carries when CORS is on. API Gateway renders gateway responses without
# Velocity ("A GatewayResponse mapping template isn't processed by the VTL engine"), so no answer of
# its own can compare the request's Origin with the list: it allows any origin to read these errors,
# which hold nothing but the error, and never with credentials (decision 0019).
GATEWAY_RESPONSE_CORS = {
    "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
    "gatewayresponse.header.Access-Control-Expose-Headers": "'Retry-After,x-amzn-RequestId'",
}
# The preflight's decision, in API Gateway's Velocity: the mock integration's request template names
# a status, and that status picks the integration response. 404 when CORS is off (as if there were
# no OPTIONS method at all), 204 for an allowed origin asking for a method the resource has, 403 for
# anything else. `${AllowedOrigins}` is the api stack's parameter (CloudFormation's Fn::Sub); every
# other `$` is Velocity's. The header is looked up in both cases: HTTP/2 clients send it lower case.
PREFLIGHT_REQUEST_TEMPLATE = """\
#set($allowed = ",${AllowedOrigins},")
#set($methods = "METHODS")
#set($origin = $input.params().header.get('Origin'))
#if("$!origin" == "")#set($origin = $input.params().header.get('origin'))#end
#set($method = $input.params().header.get('Access-Control-Request-Method'))
#if("$!method" == "")#set($method = $input.params().header.get('access-control-request-method'))#end
#set($granted = false)
#if("$!origin" != "" && !$origin.contains(",") && $allowed.contains(",$origin,"))
#if("$!method" != "" && $methods.contains(",$method,"))#set($granted = true)#end
#end
#if($allowed == ",,")
{"statusCode": 404}
#elseif($granted)
{"statusCode": 204}
#else
{"statusCode": 403}
#end
"""
# The 204's template: it echoes the origin the request template already found in the list (a 204 is
# only chosen for one), by overriding the response header, which is how a mapping template sets a
# header from the request (API Gateway: "Override your API's request and response parameters").
PREFLIGHT_GRANTED_TEMPLATE = """\
#set($origin = $input.params().header.get('Origin'))
#if("$!origin" == "")#set($origin = $input.params().header.get('origin'))#end
#set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)
"""
# The bodies API Gateway's own answers have (x-amazon-apigateway-gateway-responses): problem+json.
_PREFLIGHT_REFUSED = (
    '{"type": "about:blank", "title": "Forbidden", "status": 403, "code": "CORS_NOT_ALLOWED", '
    '"detail": "This origin may not call this resource with that method from a browser.", '
    '"requestId": "$context.requestId"}'
)
_PREFLIGHT_NOT_FOUND = (
    '{"type": "about:blank", "title": "Not Found", "status": 404, "code": "NOT_FOUND", '
    '"detail": "No such resource or method", "requestId": "$context.requestId"}'
)


def preflight_operation(resource: str, methods: list[str]) -> dict[str, Any]:
    """The OPTIONS method of `resource`, which offers `methods`: a mock integration, so no function runs."""
    allowed = ",".join([*methods, "OPTIONS"])
    # The allowed origin is echoed by the 204's template (`$context.responseOverride`): a method
    # response header cannot be mapped from a method request header ("Invalid mapping expression"),
    # only from the integration response, the context, stage variables or a static value.
    granted = {
        "method.response.header.Access-Control-Allow-Methods": f"'{allowed}'",
        "method.response.header.Access-Control-Allow-Headers": f"'{','.join(ALLOWED_HEADERS)}'",
        "method.response.header.Access-Control-Max-Age": f"'{MAX_AGE_SECONDS}'",
        "method.response.header.Vary": "'Origin'",
    }
    problem = {"method.response.header.Content-Type": "'application/problem+json'"}
    refused = {**problem, "method.response.header.Vary": "'Origin'"}
    template = PREFLIGHT_REQUEST_TEMPLATE.replace("METHODS", f",{','.join(methods)},")

    def headers(names: dict[str, str]) -> dict[str, Any]:
        return {name.removeprefix("method.response.header."): {"schema": {"type": "string"}} for name in names}

    return {
        # Unique, as OpenAPI wants operation ids: "/providers/{providerId}" → "preflightProvidersProviderId".
        "operationId": "preflight" + "".join(word[:1].upper() + word[1:] for word in re.findall(r"\w+", resource)),
        "summary": "CORS preflight, answered by API Gateway itself",
        "security": [],
        "parameters": [{"name": "Origin", "in": "header", "required": False, "schema": {"type": "string"}}],
        "responses": {
            "204": {
                "description": "Allowed",
                "headers": headers({"method.response.header.Access-Control-Allow-Origin": "", **granted}),
            },
            "403": {"description": "Not allowed", "headers": headers(refused)},
            "404": {"description": "CORS is off", "headers": headers(problem)},
        },
        "x-amazon-apigateway-integration": {
            "type": "mock",
            "requestTemplates": {"application/json": {"Fn::Sub": template}},
            "responses": {
                "204": {
                    "statusCode": "204",
                    "responseParameters": granted,
                    "responseTemplates": {"application/json": PREFLIGHT_GRANTED_TEMPLATE},
                },
                "403": {
                    "statusCode": "403",
                    "responseParameters": refused,
                    "responseTemplates": {"application/json": _PREFLIGHT_REFUSED},
                },
                "default": {
                    "statusCode": "404",
                    "responseParameters": problem,
                    "responseTemplates": {"application/json": _PREFLIGHT_NOT_FOUND},
                },
            },
        },
    }


def with_cors(document: dict[str, Any]) -> dict[str, Any]:
    """The deployed document with CORS as the api stack's `AllowedOrigins` sets it: an OPTIONS method on
    every resource (the preflight; when CORS is off it answers 404, as a missing method would) and the
    CORS headers on every gateway response, present only when CORS is on (`Fn::If`)."""
    document = copy.deepcopy(document)
    for resource, item in document.get("paths", {}).items():
        methods = [method.upper() for method in _HTTP_METHODS if method in item]
        if "options" not in item:
            item["options"] = preflight_operation(resource, methods)
    for response in document.get("x-amazon-apigateway-gateway-responses", {}).values():
        parameters = response.setdefault("responseParameters", {})
        for name, value in GATEWAY_RESPONSE_CORS.items():
            parameters[name] = {"Fn::If": [CORS_CONDITION, value, _NO_VALUE]}
    return document


_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head")


class _NoAliases(yaml.SafeDumper):
    """CloudFormation refuses YAML aliases ("AWS CloudFormation doesn't support the following features:
    … Aliases", https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-formats.html);
    the source document's anchors (one integration shared by a service's routes) are written out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def shipped_openapi_text(path: Path = OPENAPI_PATH) -> str:
    """The shipped document as packaging writes it: YAML without aliases."""
    return yaml.dump(shipped_document(path), Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=10_000)


def _importable_parameter(parameter: dict[str, Any]) -> None:
    if "$ref" in parameter:
        return
    schema = parameter.get("schema", {})
    for key in [key for key in parameter if key not in (*PARAMETER_ATTRIBUTES, "schema")]:
        del parameter[key]
    if "schema" in parameter:
        parameter["schema"] = {"type": schema["type"]} if "type" in schema else {}


def _without_gateway_extensions(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_gateway_extensions(item)
            for key, item in value.items()
            if not key.startswith("x-amazon-apigateway")
        }
    if isinstance(value, list):
        return [_without_gateway_extensions(item) for item in value]
    return value
