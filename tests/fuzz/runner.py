"""`make fuzz` (`python -m tests.fuzz`): schemathesis at volume against a local stack of its own.

It starts the local stack on a free loopback port (seeded, so that stateful runs find providers with
hours and real slots to book), runs schemathesis over every operation in all its phases (examples,
coverage, fuzzing, and stateful sequences along the document's `links`) with every check that fits
API Gateway, then the stateful phase again, in further runs, until it has run the scenarios asked
for (schemathesis ends the phase early once scenarios book: see run), stops the stack, and writes
under `.build/fuzz/<timestamp>/`: schemathesis's JUnit and NDJSON reports, its console output, and
`summary.json` / `summary.md` with the figures (cases generated, operations covered, responses by
status class, 5xx, mismatches of each kind, wall time, and the stateful phase's scenarios and answers
of each booking operation). Exit status 1 on any failure, when fewer
cases than asked for were generated, or when the stateful phase never reached a booking it made
(REQUIRED: no 2xx from creating, cancelling, rescheduling or reading the history of one; a no-show's
answers are reported).

    python -m tests.fuzz [--max-examples 300] [--min-cases 10000] [--seed N] [--report-dir DIR]
                         [--phases P,…] [--max-rounds 8] [--no-require-bookings]
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
from typing import Any

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

# What the stateful phase must show to have reached real bookings through the document's links: a
# made-up booking id is 404, so a 2xx (or, for a no-show, the 422 NOT_YET_PAST of a booking still
# ahead) is an answer about a booking the run made. Operation → the statuses that count.
BOOKING_LIFECYCLE = {
    "POST /bookings": ("2xx",),
    "POST /bookings/{bookingId}/cancel": ("2xx",),
    "POST /bookings/{bookingId}/reschedule": ("2xx",),
    "POST /bookings/{bookingId}/no-show": ("2xx", "422"),
    "GET /bookings/{bookingId}/history": ("2xx",),
}
# Of those, what a run must reach. A no-show is reported, not required: every booking a run makes is
# ahead (422 NOT_YET_PAST), and schemathesis, which weighs links by what they answered, rarely
# follows that one (1 of 460 scenarios in one full run, 0 of 1,039 in another).
REQUIRED = [operation for operation in BOOKING_LIFECYCLE if not operation.endswith("/no-show")]


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
    # The stateful phase's answers: operation → status code → count; and of its 2xx, how many
    # answered a step a link fed (the rest: steps no link fed, with ids schemathesis took from earlier
    # answers, its resource pool).
    stateful: dict[str, dict[str, int]] = field(default_factory=dict)
    stateful_linked_2xx: dict[str, int] = field(default_factory=dict)
    stateful_scenarios: int = 0
    seconds: float = 0.0
    seed: str = ""
    # Each schemathesis run's seed and cases: the first runs every phase asked for, the others the
    # stateful phase again (see run).
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return self.failures.get(ACCEPTED_INVALID, 0) + self.failures.get(REJECTED_VALID, 0)

    def stateful_answers(self, operation: str, statuses: tuple[str, ...]) -> int:
        """How many of `operation`'s stateful answers had one of `statuses` ("2xx" or "422")."""
        return sum(
            count
            for status, count in self.stateful.get(operation, {}).items()
            if status in statuses or f"{status[0]}xx" in statuses
        )

    def plus(self, other: Figures) -> Figures:
        """Two schemathesis runs' figures as one run's (cases, answers and failures add up)."""

        def added(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return dict(sorted((Counter(a) + Counter(b)).items()))

        return Figures(
            cases=self.cases + other.cases,
            operations_tested=max(self.operations_tested, other.operations_tested),
            operations_selected=max(self.operations_selected, other.operations_selected),
            responses=added(self.responses, other.responses),
            server_errors=self.server_errors + other.server_errors,
            failures=added(self.failures, other.failures),
            stateful={
                operation: added(self.stateful.get(operation, {}), other.stateful.get(operation, {}))
                for operation in sorted({*self.stateful, *other.stateful})
            },
            stateful_linked_2xx=added(self.stateful_linked_2xx, other.stateful_linked_2xx),
            stateful_scenarios=self.stateful_scenarios + other.stateful_scenarios,
            seconds=round(self.seconds + other.seconds, 1),
            seed=self.seed or other.seed,
            rounds=[*self.rounds, *other.rounds],
        )

    def unreached(self) -> list[str]:
        """The required booking operations the stateful phase never got a real booking's answer from."""
        return [op for op in REQUIRED if not self.stateful_answers(op, BOOKING_LIFECYCLE[op])]


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
    figures.stateful, figures.stateful_linked_2xx, figures.stateful_scenarios = stateful_statuses(report_dir)
    figures.rounds = [{"seed": figures.seed, "cases": figures.cases, "stateful scenarios": figures.stateful_scenarios}]
    return figures


def stateful_statuses(report_dir: Path) -> tuple[dict[str, dict[str, int]], dict[str, int], int]:
    """Each operation's answers in the stateful phase, by status code, its 2xx answers to steps a link
    fed, and the number of scenarios, from the NDJSON report's finished scenarios (each holds its cases
    and their responses)."""
    found: dict[str, Counter[str]] = {}
    linked: Counter[str] = Counter()
    scenarios = 0
    for report in report_dir.glob("ndjson-*.ndjson"):
        for line in report.read_text().splitlines():
            if not line.startswith('{"ScenarioFinished"'):
                continue
            scenario = json.loads(line)["ScenarioFinished"]
            if scenario.get("phase") != "stateful" or not scenario.get("recorder"):
                continue
            recorder = scenario["recorder"]
            scenarios += 1
            for case_id, interaction in recorder.get("interactions", {}).items():
                step, response = recorder["cases"][case_id], interaction.get("response")
                if response is None:
                    continue
                operation = f"{step['value']['method'].upper()} {step['value']['path']}"
                found.setdefault(operation, Counter())[str(response["status_code"])] += 1
                if 200 <= response["status_code"] < 300 and step.get("parent_id") and step.get("is_transition_applied"):
                    linked[operation] += 1
    statuses = {operation: dict(sorted(counts.items())) for operation, counts in sorted(found.items())}
    return statuses, dict(sorted(linked.items())), scenarios


def _answers(statuses: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in statuses.items()) or "none"


def markdown(figures: Figures, ok: bool) -> str:
    responses = ", ".join(f"{count} {status}" for status, count in figures.responses.items())
    failures = ", ".join(f"{code}: {count}" for code, count in figures.failures.items()) or "none"
    rounds = "; ".join(f"{r['seed']}: {r['cases']}, {r['stateful scenarios']}" for r in figures.rounds)
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
        f"| stateful scenarios | {figures.stateful_scenarios} |\n"
        f"| schemathesis runs (seed: cases, stateful scenarios) | {rounds} |\n"
        f"| seed | {figures.seed} |\n\n"
        "Stateful phase, a booking's operations (2xx, and 422 for a no-show, answer about a booking the run made):\n\n"
        "| operation | answers | counted | 2xx to a step a link fed |\n|---|---|---|---|\n"
        + "".join(
            f"| {operation} | {_answers(figures.stateful.get(operation, {}))}"
            f" | {figures.stateful_answers(operation, statuses)} {' or '.join(statuses)}"
            f" | {figures.stateful_linked_2xx.get(operation, 0)} |\n"
            for operation, statuses in BOOKING_LIFECYCLE.items()
        )
        + f"\n{'no failures' if ok else 'FAILED'}\n"
    )


def run(args: argparse.Namespace) -> int:
    from local.stack import LocalStack, StackConfig

    report = Path(args.report_dir or REPORTS / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")).resolve()
    report.mkdir(parents=True, exist_ok=True)
    stateful = not args.phases or "stateful" in args.phases.split(",")
    started = time.monotonic()
    stack = LocalStack(StackConfig(port=0, state_dir=report / "local-stack", echo=None))
    stack.start()
    try:
        assert stack.user_pools is not None
        token = stack.user_pools.mint(FUZZER_SUB, FUZZER_GROUPS, ttl_seconds=24 * 3600)
        print(f"local stack at {stack.url}; schemathesis reports in {report}", file=sys.stderr, flush=True)
        returncode, figures = schemathesis_round(stack.url, token, report, args, args.phases, args.seed)
        # schemathesis 4.32 ends its stateful phase, without a failure, once a replayed scenario
        # answers differently (hypothesis replays prefixes; a booking's steps do answer differently:
        # the slot is taken, the booking cancelled), so once scenarios book, a phase runs tens of
        # scenarios. Further stateful-only rounds on the same stack, each with its own seed, run the
        # scenarios asked for (--max-examples) and until every booking operation has answered about a
        # booking the run made (a booking's five links share its scenarios: one may stay unchosen),
        # up to --max-rounds.
        for index in range(1, args.max_rounds):
            unreached = figures.unreached() if args.require_bookings else []
            if not stateful or (figures.stateful_scenarios >= args.max_examples and not unreached):
                break
            seed = None if args.seed is None else args.seed + index
            code, more = schemathesis_round(stack.url, token, report / f"stateful-{index}", args, "stateful", seed)
            returncode, figures = max(returncode, code), figures.plus(more)
    finally:
        stack.stop()
    figures.seconds = round(time.monotonic() - started, 1)  # the stack's start and stop included
    enough = figures.cases >= args.min_cases
    unreached = figures.unreached() if args.require_bookings and stateful else []
    ok = returncode == 0 and figures.server_errors == 0 and figures.mismatches == 0 and enough and not unreached
    text = markdown(figures, ok)
    if not enough:
        text += f"\nonly {figures.cases} cases generated, fewer than --min-cases {args.min_cases}\n"
    if unreached:
        text += f"\nthe stateful phase reached no booking it made in: {', '.join(unreached)}\n"
    (report / "summary.md").write_text(text)
    (report / "summary.json").write_text(json.dumps({**asdict(figures), "ok": ok}, indent=1))
    output = (report / "schemathesis.txt").read_text(encoding="utf-8")
    print(output[-4000:] if not ok else "", text, f"reports in {report}", sep="\n")
    return 0 if ok else 1


def schemathesis_round(
    url: str, token: str, report: Path, args: argparse.Namespace, phases: str, seed: int | None
) -> tuple[int, Figures]:
    """One schemathesis run into `report` (its console output in schemathesis.txt): its exit status
    and figures."""
    report.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(report / "schemathesis.txt", "w", encoding="utf-8") as console:
        # Its example database (.hypothesis/) lands in the report folder, not in the repository.
        result = subprocess.run(
            command(url, token, report, max_examples=args.max_examples, seed=seed, phases=phases),
            cwd=report,
            env=environment(),
            stdout=console,
            stderr=subprocess.STDOUT,
            check=False,
        )
    output = (report / "schemathesis.txt").read_text(encoding="utf-8")
    figures = figures_from(output, report, time.monotonic() - started)
    summary = f"{figures.cases} cases, {figures.stateful_scenarios} stateful scenarios, exit {result.returncode}"
    print(f"{report.name}: {summary}", file=sys.stderr, flush=True)
    return result.returncode, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--max-examples", type=int, default=300, help="schemathesis's cases per operation and phase")
    parser.add_argument("--min-cases", type=int, default=10_000, help="fail when fewer cases were generated")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis's seed, to replay a run")
    parser.add_argument("--phases", default="", help="some of examples,coverage,fuzzing,stateful (default: all)")
    parser.add_argument("--report-dir", default="", help="default: .build/fuzz/<timestamp>/")
    parser.add_argument(
        "--max-rounds", type=int, default=8, help="schemathesis runs at most, stateful-only ones included"
    )
    parser.add_argument(
        "--no-require-bookings",
        dest="require_bookings",
        action="store_false",
        help="do not fail when the stateful phase got no answer about a booking it made from one of "
        + ", ".join(REQUIRED),
    )
    return run(parser.parse_args(argv))
