"""The layering of the tree, held by import-linter with the contracts of pyproject.toml.

What ships (services/) imports nothing of the build, the local stack, the load tests or the tests;
the build (deploy/) imports nothing of the local stack; the local stack imports no tests; no service
imports another. grimp reads every import statement, those inside functions and under
`TYPE_CHECKING` included, and follows indirect chains. What it cannot see, a module named in a
string (`importlib.import_module("local.stack")`, `python -m local…`), is held by the last test.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
CONFIG: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS: dict[str, dict[str, Any]] = {contract["id"]: contract for contract in CONFIG["contracts"]}
FORBIDDEN = [
    (contract["id"], source, target)
    for contract in CONFIG["contracts"]
    if contract["type"] == "forbidden"
    for source in contract["source_modules"]
    for target in contract["forbidden_modules"]
]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the packages under `cwd`, with the project's contracts and no cache."""
    command = [LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"]
    environment = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_layering_contract() -> None:
    checked = lint_imports(ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for contract in CONTRACTS.values():
        assert f"{contract['name']} KEPT" in checked.stdout
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in checked.stdout


def test_the_contracts_say_what_the_readme_promises() -> None:
    assert set(CONFIG["root_packages"]) == {"services", "deploy", "local", "loadtests", "tests"}
    assert {(source, target) for _, source, target in FORBIDDEN} == {
        *(("services", other) for other in ("deploy", "local", "loadtests", "tests")),
        *(("deploy", other) for other in ("local", "loadtests", "tests")),
        *(("local", other) for other in ("loadtests", "tests")),
    }
    assert not any(contract.get("allow_indirect_imports") for contract in CONTRACTS.values())


def test_every_service_is_in_the_independence_contract() -> None:
    services = {
        f"services.{path.name}"
        for path in (ROOT / "services").iterdir()
        if (path / "__init__.py").is_file() and path.name != "common"
    }
    assert set(CONTRACTS["services-independent"]["modules"]) == services


def _skeleton(root: Path) -> None:
    """Empty packages named like the project's, for the contracts to apply to."""
    packages = ["services", "services/common", "services/availability", "services/booking", "services/audit"]
    packages += ["deploy", "local", "loadtests", "tests"]
    for package in packages:
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    for module in ["deploy/templates", "local/stack", "loadtests/load", "tests/conftest", "services/common/clock"]:
        (root / f"{module}.py").write_text("")
    (root / "services" / "availability" / "domain.py").write_text("")


def _broken(stdout: str) -> list[str]:
    return [contract["id"] for contract in CONTRACTS.values() if f"{contract['name']} BROKEN" in stdout]


def _break(root: Path, modules: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The check over a clean skeleton (which it must pass) after `modules` are written into it."""
    _skeleton(root)
    clean = lint_imports(root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    for module, source in modules.items():
        (root / module).write_text(source)
    return lint_imports(root)


@pytest.mark.parametrize(("contract", "source", "target"), FORBIDDEN)
def test_each_forbidden_import_breaks_its_contract(tmp_path: Path, contract: str, source: str, target: str) -> None:
    importer = f"{source}.offender"
    imported = {"deploy": "deploy.templates", "local": "local.stack", "loadtests": "loadtests.load"}.get(
        target, "tests.conftest"
    )
    # Lazily, inside a function: the way a forbidden import would try to hide.
    checked = _break(tmp_path, {f"{source}/offender.py": f"def use():\n    import {imported}\n"})

    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert contract in _broken(checked.stdout)
    assert f"{importer} -> {imported} (l.2)" in checked.stdout


@pytest.mark.parametrize(
    ("modules", "contracts", "edge"),
    [
        ({"deploy/stages.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import loadtests.load\n"},
         ["deploy-without-local"], "deploy.stages -> loadtests.load (l.3)"),
        ({"services/booking/domain.py": "from services.availability import domain\n"}, ["services-independent"],
         "services.booking.domain -> services.availability.domain (l.1)"),
        # Through common: booking -> common -> availability is still booking depending on availability.
        ({"services/booking/handler.py": "from services.common import clock\n",
          "services/common/clock.py": "from services.availability import domain\n"},
         ["services-independent"], "services.common.clock -> services.availability.domain (l.1)"),
    ],
)  # fmt: skip
def test_hidden_and_indirect_imports_break_their_contract(
    tmp_path: Path, modules: dict[str, str], contracts: list[str], edge: str
) -> None:
    checked = _break(tmp_path, modules)

    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert _broken(checked.stdout) == contracts
    assert edge in checked.stdout


# A dotted module path into a package its reader must not use: "local.stack", "tests.conftest", …
_NAMED_MODULE = re.compile(r"^(?:-m\s+)?(?P<package>\w+)\.\w+")


def named_modules(package: str) -> list[tuple[str, str]]:
    """String constants under `package` that name a module of another root package, as (file:line, text)."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = _NAMED_MODULE.match(node.value.strip())
                if match and match.group("package") in CONFIG["root_packages"]:
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.value))
    return found


def test_no_module_is_named_in_a_string_across_a_forbidden_edge() -> None:
    for source in ("services", "deploy"):
        forbidden = {target for _, from_package, target in FORBIDDEN if from_package == source}
        offending = [(where, text) for where, text in named_modules(source) if text.split(".")[0] in forbidden]
        assert offending == [], f"{source}/ names modules it must not use: {offending}"


def test_the_string_check_sees_a_dynamic_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "sneaky.py").write_text('import importlib\nimportlib.import_module("local.stack")\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert named_modules("deploy") == [("deploy/sneaky.py:2", "local.stack")]
