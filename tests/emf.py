"""The CloudWatch embedded metric format (EMF), as its specification states it: a JSON schema for the
document's structure, plus the rules a schema cannot say (every referenced member exists and has the
right type) and CloudWatch's limits. Used to check every EMF document the functions emit."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft7Validator

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "additionalProperties": False,
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 255},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                                        "Unit": {"enum": sorted(UNITS)},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}
_VALIDATOR = Draft7Validator(SCHEMA)


def problems(document: dict[str, Any]) -> list[str]:
    """Why `document` is not a valid EMF document (empty when it is)."""
    found = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in _VALIDATOR.iter_errors(document)]
    if found:
        return found
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                value = document.get(name)
                if not isinstance(value, str) or not 0 < len(value) <= 1024:
                    found.append(f"dimension {name} is not a string member of up to 1024 characters")
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            if not values or len(values) > 100 or not all(isinstance(v, int | float) for v in values):
                found.append(f"metric {metric['Name']} is not a number or an array of up to 100 numbers")
    return found


def documents(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The EMF documents among log lines (JSON objects with an `_aws` member)."""
    found = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            found.append(document)
    return found


def metric_values(emitted: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    """Every value of every metric in these documents, by metric name."""
    values: dict[str, list[float]] = {}
    for document in emitted:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return values
