"""The parity table of decision 0001 names, for each AWS behaviour the local stack reproduces, the test
that holds it: every test it names must exist, so a row cannot outlive the test that made it true."""

from __future__ import annotations

import re

from tests.conftest import ROOT

DECISION = ROOT / "docs" / "decisions" / "0001-local-stack.md"


def reproduced_rows() -> list[str]:
    text = DECISION.read_text(encoding="utf-8")
    section = text.split("### Reproduced", 1)[1].split("### Not reproduced", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| AWS behaviour")]


def test_every_reproduced_behaviour_names_tests_that_exist() -> None:
    rows = reproduced_rows()
    assert len(rows) >= 15
    tests = {path.name: path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py")}
    for row in rows:
        held_by = row.rstrip(" |").rsplit(" | ", 1)[-1]
        named = re.findall(r"`(test_[a-z0-9_]+\.py)(?:::(test_[a-z0-9_]+))?`", held_by)
        assert named, f"no test holds: {row}"
        for file, function in named:
            assert file in tests, f"{file} does not exist (row: {row[:80]})"
            if function:
                assert f"def {function}(" in tests[file], f"{file} has no {function}"
