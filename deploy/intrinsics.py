"""CloudFormation's intrinsic functions, evaluated against parameter values, a region and an account.

`Resolver` evaluates the subset of intrinsic functions the project's templates use, against parameter
values and known resource attributes. Anything else raises, so a template can never be
half-understood in silence. The local stack resolves with its own account (`local/cloudformation/`);
the deploy check (`deploy/checks.py`) with the longest names a real stage, region and account give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
    region: str = field(kw_only=True)
    account_id: str = field(kw_only=True)
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
