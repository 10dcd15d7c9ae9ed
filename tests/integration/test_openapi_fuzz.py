"""schemathesis against the running local stack's /openapi.json: every operation, no 5xx, and every
response matches what the document says (status code, content type, schema)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local.stack import LocalStack
from tests.conftest import ROOT
from tests.integration.conftest import token

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_every_operation_answers_as_documented(stack: LocalStack, tmp_path: Path) -> None:
    # admins may call every operation; a staff token holds no customer groups (decision 0018)
    everyone = token(stack, "fuzzer", ["admins", "ops"])
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{stack.url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        "8",
        "--continue-on-failure",
        "--header",
        f"Authorization: Bearer {everyone}",
        "--report-dir",
        str(tmp_path),
    ]
    # It writes its example database and its report into the working folder: keep them out of the repository.
    before = _left_behind()
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout.lower(), result.stdout[-3000:]
    assert _left_behind() == before, "schemathesis wrote into the repository"
    assert any(tmp_path.iterdir()), "schemathesis wrote nothing where it was told to"


def _left_behind() -> dict[str, float]:
    """What a schemathesis run would leave in the repository (its example database, its reports), by mtime."""
    places = [ROOT / ".hypothesis", ROOT / "schemathesis-report", ROOT / "tests" / ".hypothesis"]
    return {
        str(place): max([place.stat().st_mtime, *(item.stat().st_mtime for item in place.rglob("*"))])
        for place in places
        if place.exists()
    }
