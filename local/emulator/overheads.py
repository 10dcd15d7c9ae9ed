"""Two of moto's server costs paid on every request that do nothing for the answer, removed.

**Items through the shape walker.** moto 5 answers every operation through a generic response
serializer that walks the operation's output shape member by member. An item's attribute value is a
structure of ten optional members (S, N, B, BOOL, NULL, M, L, SS, NS, BS), and for each the
serializer asks a value picker for the member under two spellings. A calendar's Query of a few
hundred items spent more time there than in the Query: profiled under the contention benchmark, the
serializer was 35 % of the emulator's busy time, and every booking waits for the emulator's one
lock.

An attribute value with no binary anywhere (S, N, BOOL, NULL, SS, NS, and M and L of such values) is
its own wire form: the serializer would rebuild the same dictionary. Those are set as they are; any
other (B, BS, anything unexpected) still goes through moto. A property test holds both answers equal
(tests/unit/test_emulator_overheads.py).

**moto's own folder, listed per request.** moto's dispatcher finds a request's service by asking
whether the host it derived is one of moto's packages, and lists moto's folder (and stats each of its
~170 entries) to answer: 8 % of the emulator's busy time under the same benchmark. The folder does not
change while the emulator runs, so it is listed once.

Installed in the emulator process (`server.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, MutableMapping
from typing import Any

from moto import backends
from moto.core.model import StructureShape
from moto.core.serialize import BaseJSONSerializer, JSONSerializer

_moto_structure = JSONSerializer._serialize_type_structure
_moto_modules = backends.list_of_moto_modules


def plain(value: Any) -> bool:
    """An attribute value with no binary at any depth, in the shape DynamoDB's JSON gives it."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return type(inner) is str
    if kind in ("BOOL", "NULL"):
        return type(inner) is bool
    if kind in ("SS", "NS"):
        return type(inner) is list and all(type(member) is str for member in inner)
    if kind == "M":
        return type(inner) is dict and all(type(name) is str and plain(member) for name, member in inner.items())
    if kind == "L":
        return type(inner) is list and all(plain(member) for member in inner)
    return False


def _serialize_type_structure(
    self: BaseJSONSerializer, serialized: MutableMapping[str, Any], value: Any, shape: StructureShape, key: str
) -> None:
    if key and shape.name == "AttributeValue" and plain(value):
        self._default_serialize(serialized, value, shape, key)
        return
    _moto_structure(self, serialized, value, shape, key)


@functools.cache
def _listed_once() -> tuple[str, ...]:
    return tuple(_moto_modules())


def list_of_moto_modules() -> Iterable[str]:
    return _listed_once()


def install() -> None:
    JSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]
    backends.list_of_moto_modules = list_of_moto_modules
