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
