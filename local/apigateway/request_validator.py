"""API Gateway's request validator, as `cloudformation/api/openapi.yaml` turns it on.

The document names validators (`x-amazon-apigateway-request-validators`) and which one applies, to
the whole API or to an operation (`x-amazon-apigateway-request-validator`). API Gateway then checks,
before any function runs:

- parameters: every required path, query string and header parameter is present and not blank; only
  presence, never type, pattern or format;
- the body: against the model of the request's content type (JSON Schema draft 4, built from
  `components.schemas` as the importer builds models, `deploy/openapi.py: model_schema`, without
  what it does not support, such as `additionalProperties`: an unknown field passes the gateway and
  the function refuses it); a content type without a model is not validated, and an empty body is
  validated as `{}`, as API Gateway reads it.

A refusal is the `BAD_REQUEST_PARAMETERS` or `BAD_REQUEST_BODY` gateway response, with API Gateway's
messages. The schemas are checked with the `jsonschema` package's draft 4 validator, not by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jsonschema import Draft4Validator

from deploy.openapi import model_schema
from local.apigateway.http_messages import HttpRequest

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_LOCATIONS = {"path", "query", "header"}


@dataclass(frozen=True)
class Refusal:
    response_type: str  # BAD_REQUEST_PARAMETERS or BAD_REQUEST_BODY
    message: str
    details: tuple[str, ...] = ()  # what the schema said, for the access log's errorMessage


@dataclass(frozen=True)
class _Checks:
    required: tuple[tuple[str, str], ...]  # (location, name) when parameters are validated
    bodies: dict[str, Draft4Validator]  # content type → model, when the body is validated


class RequestValidator:
    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        models = {"components": {"schemas": model_schema(document.get("components", {}).get("schemas", {}))}}
        validators = document.get("x-amazon-apigateway-request-validators", {})
        default = document.get("x-amazon-apigateway-request-validator")
        self._checks: dict[tuple[str, str], _Checks] = {}
        for resource, item in document.get("paths", {}).items():
            for method in _METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                chosen = validators.get(operation.get("x-amazon-apigateway-request-validator", default), {})
                required: tuple[tuple[str, str], ...] = ()
                if chosen.get("validateRequestParameters"):
                    required = self._required(item.get("parameters", []), operation.get("parameters", []))
                bodies: dict[str, Draft4Validator] = {}
                if chosen.get("validateRequestBody"):
                    for content_type, media in operation.get("requestBody", {}).get("content", {}).items():
                        if "schema" in media:
                            schema = {"allOf": [model_schema(media["schema"])], **models}
                            bodies[content_type.lower()] = Draft4Validator(schema)
                self._checks[(method.upper(), resource)] = _Checks(required, bodies)

    def _resolve(self, parameter: dict[str, Any]) -> dict[str, Any]:
        reference = parameter.get("$ref")
        if reference is None:
            return parameter
        found: Any = self._document
        for part in reference.removeprefix("#/").split("/"):
            found = found[part]
        return dict(found)

    def _required(self, shared: list[dict[str, Any]], own: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
        # An operation's parameter replaces the path item's of the same name and location (OpenAPI).
        parameters = {(p["in"], p["name"]): p for p in (self._resolve(p) for p in [*shared, *own])}
        return tuple(key for key, parameter in parameters.items() if key[0] in _LOCATIONS and parameter.get("required"))

    def check(
        self, method: str, resource: str, request: HttpRequest, path_parameters: dict[str, str]
    ) -> Refusal | None:
        """The refusal API Gateway would answer this request with, or None when it goes through."""
        checks = self._checks.get((method, resource))
        if checks is None:
            return None
        missing = [name for location, name in checks.required if not _present(location, name, request, path_parameters)]
        if missing:
            return Refusal("BAD_REQUEST_PARAMETERS", f"Missing required request parameters: [{', '.join(missing)}]")
        content_type = (request.header("content-type") or "application/json").split(";")[0].strip().lower()
        model = checks.bodies.get(content_type) or checks.bodies.get("$default")
        if model is None:
            return None
        try:
            instance = json.loads(request.body) if request.body.strip() else {}  # API Gateway's reading of none
        except ValueError:
            return Refusal("BAD_REQUEST_BODY", "Invalid request body", ("the body is not JSON",))
        errors = sorted(model.iter_errors(instance), key=lambda error: list(error.absolute_path))
        if errors:
            details = tuple(_shortened(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}") for e in errors[:10])
            return Refusal("BAD_REQUEST_BODY", "Invalid request body", details)
        return None


def _shortened(text: str, limit: int = 200) -> str:
    """A validation message quotes the value it refuses, which may be megabytes."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _present(location: str, name: str, request: HttpRequest, path_parameters: dict[str, str]) -> bool:
    if location == "path":
        value: str | None = path_parameters.get(name)
    elif location == "query":
        values = [v for k, v in parse_qsl(urlsplit(request.target).query, keep_blank_values=True) if k == name]
        value = values[-1] if values else None
    else:
        value = request.header(name)
    return bool(value and value.strip())
