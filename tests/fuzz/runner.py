"""`make fuzz` (`python -m tests.fuzz`): schemathesis at volume against a local stack of its own.

It starts the local stack on a free loopback port (seeded, so that stateful runs find providers with
hours and real slots to book), runs schemathesis over every operation in all its phases (examples,
coverage, fuzzing, and stateful sequences along the document's `links`) with every check that fits
API Gateway, stops the stack, and writes under `.build/fuzz/<timestamp>/`: schemathesis's JUnit and
NDJSON reports, its console output, and `summary.json` / `summary.md` with the figures (cases
generated, operations covered, responses by status class, 5xx, mismatches of each kind, wall time).
Exit status 1 on any failure, or when fewer cases than asked for were generated.

    python -m tests.fuzz [--max-examples 300] [--min-cases 10000] [--seed N] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.fuzz.hooks import FUZZER_GROUPS, FUZZER_SUB

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
REPORTS = ROOT / ".build" / "fuzz"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"

# Every check but `unsupported_method`: API Gateway answers a method a resource does not declare as it
# answers an unknown path (MISSING_AUTHENTICATION_TOKEN, which the document maps to 404), never with
# the 405 that check expects, and the local gateway does as API Gateway does.
EXCLUDED_CHECKS = "unsupported_method"
# The failure codes schemathesis prints for the two contract checks (`st explain ST201`, `ST202`).
ACCEPTED_INVALID, REJECTED_VALID = "ST201", "ST202"


def command(
    url: str, token: str, report_dir: Path, *, max_examples: int, seed: int | None, phases: str = ""
) -> list[str]:
    """The schemathesis CLI run both `make fuzz` and the short run in make test use."""
    return [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--max-examples",
        str(max_examples),
        *(["--seed", str(seed)] if seed is not None else []),
        *(["--phases", phases] if phases else []),
        "--workers",
        "1",  # the stack under test shares the machine; one client keeps it usable
        "--continue-on-failure",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "junit,ndjson",
        "--report-dir",
        str(report_dir),
    ]


def environment() -> dict[str, str]:
    """The CLI's environment: the hooks module, importable from the repository."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass
class Figures:
    """What one run found, read from schemathesis's own summary and its NDJSON events."""

    cases: int = 0
    operations_tested: int = 0
    operations_selected: int = 0
    responses: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    seed: str = ""

    @property
    def mismatches(self) -> int:
        return self.failures.get(ACCEPTED_INVALID, 0) + self.failures.get(REJECTED_VALID, 0)


def figures_from(output: str, report_dir: Path, seconds: float) -> Figures:
    """Figures from schemathesis's console summary (cases, operations, failures by code) and the
    NDJSON report (every response's status)."""
    figures = Figures(seconds=round(seconds, 1))
    if found := re.search(r"(\d+) generated", output):
        figures.cases = int(found.group(1))
    if found := re.search(r"Selected:\s*(\d+)/(\d+)", output):
        figures.operations_selected = int(found.group(2))
    if found := re.search(r"Tested:\s*(\d+)", output):
        figures.operations_tested = int(found.group(1))
    if found := re.search(r"Seed:\s*(\d+)", output):
        figures.seed = found.group(1)
    # Its summary's "Failures:" lines: "  ❌ ST202 Schema-valid request rejected: 12".
    figures.failures = {code: int(count) for code, count in re.findall(r"^\s*❌ (\S+) [^\n]*?: (\d+)$", output, re.M)}
    statuses: Counter[str] = Counter()
    for report in report_dir.glob("ndjson-*.ndjson"):
        for line in report.read_text().splitlines():
            for status in re.findall(r'"status_code":\s*(\d{3})', line):
                statuses[f"{status[0]}xx"] += 1
    figures.responses = dict(sorted(statuses.items()))
    figures.server_errors = statuses.get("5xx", 0)
    return figures


def markdown(figures: Figures, ok: bool) -> str:
    responses = ", ".join(f"{count} {status}" for status, count in figures.responses.items())
    failures = ", ".join(f"{code}: {count}" for code, count in figures.failures.items()) or "none"
    return (
        "| figure | value |\n|---|---|\n"
        f"| cases generated | {figures.cases} |\n"
        f"| operations tested | {figures.operations_tested} of {figures.operations_selected} |\n"
        f"| responses | {responses} |\n"
        f"| 5xx | {figures.server_errors} |\n"
        f"| schema-valid rejected ({REJECTED_VALID}) | {figures.failures.get(REJECTED_VALID, 0)} |\n"
        f"| schema-violating accepted ({ACCEPTED_INVALID}) | {figures.failures.get(ACCEPTED_INVALID, 0)} |\n"
        f"| failures by code | {failures} |\n"
        f"| wall time | {figures.seconds} s |\n"
        f"| seed | {figures.seed} |\n\n"
        f"{'no failures' if ok else 'FAILED'}\n"
    )


def run(args: argparse.Namespace) -> int:
    from local.stack import LocalStack, StackConfig

    report = Path(args.report_dir or REPORTS / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")).resolve()
    report.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stack = LocalStack(StackConfig(port=0, state_dir=report / "local-stack", echo=None))
    stack.start()
    try:
        assert stack.user_pools is not None
        token = stack.user_pools.mint(FUZZER_SUB, FUZZER_GROUPS, ttl_seconds=24 * 3600)
        print(f"local stack at {stack.url}; schemathesis reports in {report}", file=sys.stderr, flush=True)
        with open(report / "schemathesis.txt", "w", encoding="utf-8") as console:
            # Its example database (.hypothesis/) lands in the report folder, not in the repository.
            result = subprocess.run(
                command(stack.url, token, report, max_examples=args.max_examples, seed=args.seed, phases=args.phases),
                cwd=report,
                env=environment(),
                stdout=console,
                stderr=subprocess.STDOUT,
                check=False,
            )
    finally:
        stack.stop()
    output = (report / "schemathesis.txt").read_text(encoding="utf-8")
    figures = figures_from(output, report, time.monotonic() - started)
    enough = figures.cases >= args.min_cases
    ok = result.returncode == 0 and figures.server_errors == 0 and figures.mismatches == 0 and enough
    text = markdown(figures, ok)
    if not enough:
        text += f"\nonly {figures.cases} cases generated, fewer than --min-cases {args.min_cases}\n"
    (report / "summary.md").write_text(text)
    (report / "summary.json").write_text(json.dumps({**asdict(figures), "ok": ok}, indent=1))
    print(output[-4000:] if not ok else "", text, f"reports in {report}", sep="\n")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--max-examples", type=int, default=300, help="schemathesis's cases per operation and phase")
    parser.add_argument("--min-cases", type=int, default=10_000, help="fail when fewer cases were generated")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis's seed, to replay a run")
    parser.add_argument("--phases", default="", help="some of examples,coverage,fuzzing,stateful (default: all)")
    parser.add_argument("--report-dir", default="", help="default: .build/fuzz/<timestamp>/")
    return run(parser.parse_args(argv))
