"""Two of Powertools' packages imported with their names loaded on first use, not all at once.

`aws_lambda_powertools.event_handler` imports every resolver it has (AppSync's brings asyncio,
Bedrock's, VPC Lattice's, …) and `aws_lambda_powertools.utilities.data_classes` every event class
(about forty), whichever one a function uses. Python runs a package's `__init__` before any of its
modules, so importing the REST resolver pays for all of them: about 30 ms of a cold start's CPU
(decision 0021). Each handler module imports this module second, after `init_gc`.

For each package in DEFERRED, `defer()` reads its `__init__` (it ships as source) and, when all it
does is import names from the package's modules and set `__all__`, makes the package a module whose
names are imported from where the `__init__` would have imported them, when first asked for (PEP 562
`__getattr__`). Everything else about the package is as Python would make it: the same spec, path and
submodules. An `__init__` that does anything more (a future release) is imported as usual: nothing
breaks, the cold start just pays again, and `tests/unit/test_lazy_packages.py` says so.

Written by hand because the field's lazy loaders make a package's *own* `__init__` lazy
(scientific-python's lazy_loader, SPEC 1), and `importlib.util.LazyLoader` loads a package as soon as
the import system reads its `__path__`, which importing any of its modules does.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from typing import Any

DEFERRED = ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes")


def names_imported(package: str, source: str) -> dict[str, tuple[str, str]] | None:
    """`{name: (module, name there)}` for an `__init__` that only imports names and sets `__all__`, else None."""
    names: dict[str, tuple[str, str]] = {}
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # the docstring
        if isinstance(statement, ast.Assign) and [ast.unparse(target) for target in statement.targets] == ["__all__"]:
            continue
        if not isinstance(statement, ast.ImportFrom) or statement.module is None:
            return None
        if statement.level == 1:
            module = f"{package}.{statement.module}"
        elif statement.level == 0 and statement.module.startswith(f"{package}."):
            module = statement.module
        else:
            return None  # an import from outside the package could have effects of its own
        for alias in statement.names:
            if alias.name == "*":
                return None
            names[alias.asname or alias.name] = (module, alias.name)
    return names


def defer(package: str) -> bool:
    """Put `package` in sys.modules with its names loaded on first use; False when it cannot be (imported as usual)."""
    if package in sys.modules:
        return False
    spec = importlib.util.find_spec(package)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    source = spec.loader.get_source(package)  # type: ignore[attr-defined]
    names = names_imported(package, source) if source else None
    if names is None:
        return False

    module = importlib.util.module_from_spec(spec)

    def __getattr__(name: str) -> Any:
        if name in names:
            where, original = names[name]
            value = getattr(importlib.import_module(where), original)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")  # a module the __init__ would have imported
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    module.__all__ = list(names)  # type: ignore[attr-defined]
    sys.modules[package] = module
    parent, _, child = package.rpartition(".")
    setattr(sys.modules[parent], child, module)  # find_spec imported the parent
    return True


deferred: dict[str, bool] = {package: defer(package) for package in DEFERRED}
