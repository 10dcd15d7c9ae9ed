"""CloudFormation templates as this project keeps them and as CloudFormation receives them.

- Reading: PyYAML cannot read the short-form intrinsic tags (`!Ref`, `!Sub`, `!GetAtt`, …);
  `TemplateLoader` turns each into its long form (`{"Ref": …}`, `{"Fn::Sub": …}`), so packaging, the
  local stack (`local/cloudformation/`) and the tests all read a template the same way.
- Rendering: `{{ dashboards/<name>.json }}` placeholders are replaced by the dashboard bodies, so that
  a body is kept and reviewed as JSON in dashboards/ while CloudFormation receives it as the template
  of an `Fn::Sub` (resource names, region and stage substituted there). `make deploy` packages the
  rendered templates; the local stack draws its dashboard from them; the tests lint them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

try:
    # libyaml's parser, which PyYAML's binary wheels carry: the same documents, about ten times faster
    # (the 100 KB API document in 23 ms instead of 254), paid at every local stack start and by every
    # in-process test invocation.
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # a PyYAML built without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "cloudformation"
PLACEHOLDER = re.compile(r'"\{\{ (dashboards/[a-z0-9-]+\.json) \}\}"')

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub",
            "GetAtt",
            "Join",
            "If",
            "Equals",
            "Not",
            "And",
            "Or",
            "Select",
            "Split",
            "FindInMap",
            "ImportValue",
            "Base64",
            "Cidr",
            "GetAZs",
            "Transform",
            "Length",
            "ToJsonString",
        )
    },
}


class TemplateLoader(SafeLoader):
    """A safe YAML loader that also understands CloudFormation's short-form tags."""


def _construct_intrinsic(loader: SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = _SHORT_TAGS.get(tag_suffix)
    if name is None:
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown CloudFormation tag !{tag_suffix}", node.start_mark
        )
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            # `!GetAtt Resource.Attribute` is the only short form whose scalar has structure.
            resource, _, attribute = str(value).partition(".")
            value = [resource, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation template (YAML or JSON) into its long-form dictionary."""
    with open(path, encoding="utf-8") as handle:
        return parse_template(handle.read(), str(path))


def parse_template(text: str, source: str = "the template") -> dict[str, Any]:
    """Parse a template's text (e.g. as packaging renders it) into its long-form dictionary."""
    template = yaml.load(text, Loader=TemplateLoader)
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{source} is not a CloudFormation template (no Resources)")
    return template


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == resource_type
    }


def render_template(path: Path) -> str:
    """The template's text with every dashboard placeholder replaced by the body, as a YAML string."""

    def body(match: re.Match[str]) -> str:
        dashboard = json.loads((ROOT / match.group(1)).read_text())
        # A JSON string literal is a valid YAML double-quoted scalar.
        return json.dumps(json.dumps(dashboard, separators=(",", ":"), ensure_ascii=False), ensure_ascii=False)

    return PLACEHOLDER.sub(body, path.read_text())
