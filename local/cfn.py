"""Read CloudFormation templates the way CloudFormation does, so the local stack builds from them.

PyYAML cannot read the short-form intrinsic tags (`!Ref`, `!Sub`, `!GetAtt`, …); the loader below
turns each into its long form (`{"Ref": …}`, `{"Fn::Sub": …}`), and `Resolver` evaluates the subset
of intrinsic functions the project's templates use. Anything else raises, so a template can never be
half-understood in silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


class TemplateLoader(yaml.SafeLoader):
    """A safe YAML loader that also understands CloudFormation's short-form tags."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
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


class UnsupportedIntrinsicError(ValueError):
    """The template uses an intrinsic function the local stack does not evaluate."""


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameter values and known resource attributes.

    `refs` answers `Ref` for parameters, pseudo parameters and resources (physical ids);
    `attributes` answers `Fn::GetAtt` as `{"Logical.Attribute": value}`.
    """

    template: Mapping[str, Any]
    parameters: Mapping[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "appointments-local"
    resources: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._refs: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        for name, spec in self.template.get("Parameters", {}).items():
            if name in self.parameters:
                self._refs[name] = self.parameters[name]
            elif "Default" in spec:
                self._refs[name] = spec["Default"]
            else:
                raise ValueError(f"parameter {name} has no value and no default")
        self._refs.update(self.resources)
        self._conditions: dict[str, bool] = {}

    def parameter(self, name: str) -> Any:
        """The effective value of a template parameter."""
        return self._refs[name]

    def condition(self, name: str) -> bool:
        """Evaluate a named condition from the template's Conditions section."""
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        """Return `value` with every intrinsic function evaluated; `AWS::NoValue` entries dropped."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, argument)
            if key.startswith("Fn::") or key == "Ref":
                raise UnsupportedIntrinsicError(f"{key} is not supported by the local stack")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name not in self._refs:
            raise KeyError(f"Ref to unknown parameter or resource {name!r}")
        return self._refs[name]

    def _get_att(self, argument: list[Any]) -> Any:
        resource, attribute = (self.resolve(part) for part in argument)
        key = f"{resource}.{attribute}"
        if key not in self.attributes:
            raise KeyError(f"GetAtt {key} is not known to the local stack")
        return self.attributes[key]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        local = {k: self.resolve(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._get_att(name.split(".", 1)))
            return str(self._ref(name))

        # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
        return _SUB_VARIABLE.sub(substitute, text).replace("${!", "${")

    def _join(self, argument: list[Any]) -> str:
        delimiter, items = argument
        return str(delimiter).join(str(item) for item in self.resolve(items))

    def _if(self, argument: list[Any]) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]


_NO_VALUE = object()

_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda r, a: r._ref(a),
    "Fn::GetAtt": Resolver._get_att,
    "Fn::Sub": Resolver._sub,
    "Fn::Join": Resolver._join,
    "Fn::If": Resolver._if,
    "Fn::Select": Resolver._select,
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(a[0]),
    "Fn::Equals": lambda r, a: r.resolve(a[0]) == r.resolve(a[1]),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r.resolve(x) for x in a),
    "Condition": lambda r, a: r.condition(a),
}


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The template's resources of one type, by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == resource_type
    }
