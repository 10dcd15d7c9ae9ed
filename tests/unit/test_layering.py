"""The layering of the tree, held by import-linter with the contracts of pyproject.toml.

What ships (services/) imports nothing of the build, the local stack, the load tests or the tests;
the build (deploy/) imports nothing of the local stack; the local stack imports no tests; no service
imports another. grimp reads every import statement, those inside functions and under
`TYPE_CHECKING` included, so a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
CONTRACTS = {
    "services-ship-alone": "services/ imports nothing of deploy/, local/, loadtests/ or tests/",
    "deploy-without-local": "deploy/ imports nothing of local/, loadtests/ or tests/",
    "local-without-tests": "local/ imports nothing of loadtests/ or tests/",
    "services-independent": "No service imports another service (they share only services/common/)",
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the packages under `cwd`, with the project's contracts and no cache."""
    command = [LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"]
    environment = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_layering_contract() -> None:
    checked = lint_imports(ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for name in CONTRACTS.values():
        assert f"{name} KEPT" in checked.stdout
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in checked.stdout


def _skeleton(root: Path) -> None:
    """Empty packages named like the project's, for the contracts to apply to."""
    packages = [
        "services",
        "services/common",
        "services/availability",
        "services/booking",
        "services/audit",
        "deploy",
        "local",
        "local/emulator",
        "loadtests",
        "tests",
    ]
    for package in packages:
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "local" / "emulator" / "server.py").write_text("")
    (root / "tests" / "conftest.py").write_text("")
    (root / "services" / "common" / "clock.py").write_text("")
    (root / "services" / "availability" / "domain.py").write_text("")


@pytest.mark.parametrize(
    ("module", "source", "contract", "edge"),
    [
        ("services/booking/handler.py", "from local.emulator import server\n", "services-ship-alone",
         "local.emulator.server"),
        ("services/audit/handler.py", "import deploy\n", "services-ship-alone", "deploy"),
        ("services/common/errors.py", "import tests.conftest\n", "services-ship-alone", "tests.conftest"),
        ("deploy/package.py", "def build():\n    from local.emulator import server\n", "deploy-without-local",
         "local.emulator.server"),
        ("deploy/stages.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import loadtests\n",
         "deploy-without-local", "loadtests"),
        ("local/stack.py", "from tests import conftest\n", "local-without-tests", "tests.conftest"),
        ("services/booking/domain.py", "from services.availability import domain\n", "services-independent",
         "services.availability.domain"),
    ],
)  # fmt: skip
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, source: str, contract: str, edge: str
) -> None:
    _skeleton(tmp_path)
    clean = lint_imports(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (tmp_path / module).write_text(source)

    checked = lint_imports(tmp_path)

    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"{CONTRACTS[contract]} BROKEN" in checked.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {edge} (l." in checked.stdout
    broken = [name for name in CONTRACTS.values() if f"{name} BROKEN" in checked.stdout]
    assert broken == [CONTRACTS[contract]]
