"""The API document, `cloudformation/api/openapi.yaml`: what API Gateway imports and what clients read.

One document serves both: API Gateway imports it with its `x-amazon-apigateway-*` extensions
(integrations, authorizer, validators, gateway responses), the local gateway routes with it
(`local/apigateway/`), and clients get it without those extensions at `/openapi.json` and `/docs`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from deploy.templates import TEMPLATES

OPENAPI_PATH = TEMPLATES / "api" / "openapi.yaml"


def load_document(path: Path = OPENAPI_PATH) -> dict[str, Any]:
    """The document as written, API Gateway's extensions included."""
    with open(path, encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


def public_document(document: dict[str, Any]) -> dict[str, Any]:
    """The document clients see: API Gateway's own extensions removed."""
    public: dict[str, Any] = _without_gateway_extensions(copy.deepcopy(document))
    return public


_SCHEMA_MAPS = {"properties", "patternProperties", "definitions"}  # name → schema, names are data


def draft4_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as the JSON Schema draft 4 model API Gateway builds from it.

    API Gateway validates with draft 4, which has no `nullable`: `{type: t, nullable: true}` becomes
    `{type: [t, "null"]}` (and a schema that is only `nullable` accepts anything, as it did). `example`
    is OpenAPI's, not draft 4's, and goes."""
    if isinstance(schema, list):
        return [draft4_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key in {"nullable", "example"}:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            converted[key] = {name: draft4_schema(item) for name, item in value.items()}
        else:
            converted[key] = draft4_schema(value)
    if schema.get("nullable") is True and "type" in converted:
        types = converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
        converted["type"] = types if "null" in types else [*types, "null"]
    return converted


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
