"""A mypy plugin: `msgspec.structs.replace(value, **changes)` checked as mypy checks `dataclasses.replace`.

msgspec's stub takes `**changes: Any`, so without this a misspelt field or a value of the wrong type in
a `replace` call would type-check and fail only when that line runs (decision 0034). mypy's own check of
`dataclasses.replace` reads the fields PEP 681 gives a Struct, so it serves Structs as they are.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.plugin import FunctionSigContext, Plugin
from mypy.plugins.dataclasses import replace_function_sig_callback
from mypy.types import FunctionLike


class MsgspecReplace(Plugin):
    def get_function_signature_hook(self, fullname: str) -> Callable[[FunctionSigContext], FunctionLike] | None:
        return replace_function_sig_callback if fullname == "msgspec.structs.replace" else None


def plugin(version: str) -> type[Plugin]:
    return MsgspecReplace
