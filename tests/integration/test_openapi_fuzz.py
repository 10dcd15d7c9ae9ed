"""schemathesis against the running local stack's /openapi.json, briefly (`make fuzz` runs the same at
volume, with the coverage phase too): every operation, stateful sequences along the document's links, every
check that fits API Gateway. No 5xx; every response as documented (status code, content type, headers,
schema); no schema-valid request refused as malformed and no schema-violating one accepted (opaque
cursors aside: tests/fuzz/hooks.py says why)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from local.stack import LocalStack
from tests.conftest import ROOT
from tests.fuzz.hooks import FUZZER_GROUPS, FUZZER_SUB
from tests.fuzz.runner import command, environment, figures_from
from tests.integration.conftest import token

# Cases per operation and phase, and the phases: what keeps this run near a minute on two cores. The
# coverage phase (boundary values of every parameter, about 100 s alone) runs in make fuzz.
MAX_EXAMPLES = 5
PHASES = "examples,fuzzing,stateful"


def test_every_operation_answers_as_documented(stack: LocalStack, tmp_path: Path) -> None:
    everyone = token(stack, FUZZER_SUB, FUZZER_GROUPS)
    # It writes its example database and its report into the working folder: keep them out of the repository.
    before = _left_behind()
    result = subprocess.run(
        command(stack.url, everyone, tmp_path, max_examples=MAX_EXAMPLES, seed=None, phases=PHASES),
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    figures = figures_from(result.stdout, tmp_path, seconds=0)
    assert figures.failures == {} and figures.server_errors == 0, result.stdout[-6000:]
    assert figures.operations_tested == figures.operations_selected > 0, result.stdout[-3000:]
    assert figures.responses.get("2xx", 0) > 0 and figures.responses.get("4xx", 0) > 0, figures
    assert "Stateful" in result.stdout and "API Links" in result.stdout, "the stateful phase followed the links"
    # make fuzz reads each operation's stateful answers from the NDJSON report (too few here to require bookings)
    assert sum(sum(statuses.values()) for statuses in figures.stateful.values()) > 0, figures
    assert _left_behind() == before, "schemathesis wrote into the repository"
    assert list(tmp_path.glob("junit-*.xml")), "schemathesis wrote no report where it was told to"


def _left_behind() -> dict[str, float]:
    """What a schemathesis run would leave in the repository (its example database, its reports), by mtime."""
    places = [ROOT / ".hypothesis", ROOT / "schemathesis-report", ROOT / "tests" / ".hypothesis"]
    return {
        str(place): max([place.stat().st_mtime, *(item.stat().st_mtime for item in place.rglob("*"))])
        for place in places
        if place.exists()
    }
