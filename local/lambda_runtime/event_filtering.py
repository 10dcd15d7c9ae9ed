"""Lambda's event filtering (`FilterCriteria`) for a stream event source mapping, as AWS documents it.

A mapping holds up to five filters (a quota AWS can raise to ten); each `Pattern` is a JSON object
whose keys name fields of the record Lambda would deliver and whose leaves are arrays of rules. A
record matches a pattern when every field the pattern names matches (AND), a field matching when
any rule of its array does (OR); the record is delivered when it matches any filter, and otherwise
discarded: not delivered, not a failure, the iterator moves past it. Rules, as Lambda documents them
(the syntax is Amazon EventBridge's, implemented by aws/event-ruler):

- a JSON scalar (string, number, `true`/`false`, `null`) matches that exact value, character by
  character for strings and by their text for numbers (300, 300.0 and 3.0e2 differ); `""` is
  the empty string and `null` a present null, never a missing field;
- `{"prefix": "…"}` matches a string that begins with it;
- `{"anything-but": […]}` (or one string) matches a string that is none of them;
- `{"exists": true}` matches when the field has a value (a leaf: an object there is not a value),
  `{"exists": false}` when it has none, its parents missing included.

When the record holds an array where a rule is applied, the rule matches if it matches an element.

Left out, and refused when a template uses them (so a filter is never silently weaker or stronger
here than on AWS): `numeric`, `suffix`, `equals-ignore-case`, `wildcard`, `cidr`, `$or`,
`anything-but` with a prefix or numbers, and `anything-but` or `exists` applied to an array.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_FILTERS = 5  # the default quota per mapping; creating a mapping with more fails
MAX_PATTERN_CHARS = 4096  # the API's limit on one `Pattern`
_ABSENT = object()


class FilterPatternError(ValueError):
    """A pattern Lambda would refuse, or one using syntax this emulation does not implement."""


@dataclass(frozen=True)
class _Number:
    """A number as its JSON text: Lambda compares numbers by their text, not their value."""

    text: str


@dataclass(frozen=True)
class EventFilter:
    """A mapping's `FilterCriteria`: the records it delivers."""

    patterns: tuple[dict[str, Any], ...]

    @classmethod
    def from_criteria(cls, criteria: dict[str, Any] | None) -> EventFilter | None:
        """The filter of `FilterCriteria` as CloudFormation gives it; None when there is none."""
        filters = (criteria or {}).get("Filters") or []
        if not filters:
            return None
        if len(filters) > MAX_FILTERS:
            raise FilterPatternError(f"{len(filters)} filters: a mapping takes at most {MAX_FILTERS}")
        patterns = []
        for entry in filters:
            text = entry.get("Pattern")
            if not isinstance(text, str) or len(text) > MAX_PATTERN_CHARS:
                raise FilterPatternError(f"a Pattern is a JSON string of at most {MAX_PATTERN_CHARS} characters")
            try:
                pattern = json.loads(text, parse_int=_Number, parse_float=_Number)
            except json.JSONDecodeError as error:
                raise FilterPatternError(f"Pattern is not JSON: {error}") from error
            if not isinstance(pattern, dict) or not pattern:
                raise FilterPatternError("a Pattern is a non-empty JSON object")
            _check(pattern, "")
            patterns.append(pattern)
        return cls(tuple(patterns))

    def keeps(self, record: dict[str, Any]) -> bool:
        """Whether Lambda would deliver this record (as the function receives it)."""
        return any(_matches(pattern, record) for pattern in self.patterns)


def _check(pattern: dict[str, Any], path: str) -> None:
    """Refuse what Lambda refuses (a leaf that is not an array) and what is not implemented here."""
    for name, value in pattern.items():
        where = f"{path}.{name}" if path else name
        if name == "$or":
            raise FilterPatternError(f"{where}: `$or` is not implemented by the local mapping")
        if isinstance(value, dict):
            if not value:
                raise FilterPatternError(f"{where}: an empty object matches nothing Lambda accepts")
            _check(value, where)
        elif isinstance(value, list):
            if not value:
                raise FilterPatternError(f"{where}: an empty rule array")  # Lambda refuses it too
            for rule in value:
                _check_rule(rule, where)
        else:
            raise FilterPatternError(f"{where}: a rule must be an array, as in [{json.dumps(value, default=str)}]")


def _check_rule(rule: Any, where: str) -> None:
    if rule is None or isinstance(rule, str | bool | _Number):
        return
    if not isinstance(rule, dict) or len(rule) != 1:
        raise FilterPatternError(f"{where}: {rule!r} is not a rule")
    ((operator, operand),) = rule.items()
    if operator == "prefix" and isinstance(operand, str):
        return
    if operator == "exists" and isinstance(operand, bool):
        return
    if operator == "anything-but" and (
        isinstance(operand, str) or (isinstance(operand, list) and operand and all(isinstance(o, str) for o in operand))
    ):
        return
    raise FilterPatternError(f"{where}: {{{operator!r}: …}} is not implemented by the local mapping")


def _matches(pattern: dict[str, Any], value: Any) -> bool:
    """Every field the pattern names matches the value's field of that name."""
    for name, expected in pattern.items():
        field = value.get(name, _ABSENT) if isinstance(value, dict) else _ABSENT
        if isinstance(expected, dict):
            if isinstance(field, list):
                # Arrays are crushed out: an element that matches the whole sub-pattern will do.
                if not any(_matches(expected, element) for element in field):
                    return False
            elif not _matches(expected, field if isinstance(field, dict) else {}):
                return False
        elif not any(_rule_matches(rule, field) for rule in expected):
            return False
    return True


def _rule_matches(rule: Any, field: Any) -> bool:
    if isinstance(rule, dict):
        ((operator, operand),) = rule.items()
        if operator == "exists":
            if isinstance(field, list):
                raise FilterPatternError("`exists` on an array field is not implemented by the local mapping")
            has_value = field is not _ABSENT and not isinstance(field, dict)  # exists only sees leaves
            return has_value is operand
        if isinstance(field, list):
            if operator == "anything-but":
                raise FilterPatternError("`anything-but` on an array field is not implemented by the local mapping")
            return any(_rule_matches(rule, element) for element in field)
        if operator == "prefix":
            return isinstance(field, str) and field.startswith(operand)
        excluded = [operand] if isinstance(operand, str) else operand
        return isinstance(field, str) and field not in excluded  # anything-but (strings only, checked)
    if isinstance(field, list):
        return any(_rule_matches(rule, element) for element in field)
    return _equal(rule, field)


def _equal(rule: Any, field: Any) -> bool:
    """JSON equality as Lambda does it: same type, same text (so `true` is not 1, nor "true")."""
    if field is _ABSENT:
        return False
    if rule is None or isinstance(rule, bool):
        return field is rule
    if isinstance(rule, _Number):
        return isinstance(field, int | float) and not isinstance(field, bool) and json.dumps(field) == rule.text
    return isinstance(field, str) and field == rule
