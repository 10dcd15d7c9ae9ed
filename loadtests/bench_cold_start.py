"""Benchmark: what each function runs at init, against `import boto3` plus a DynamoDB client.

Init as deployed: the handler module's imports and module-level setup (tracing included: the
OpenTelemetry SDK is configured when `services.common.tracing` is imported), with the environment the
function's CloudFormation resource gives it and the X-Ray daemon address Lambda sets with active
tracing, and with only what ships: the packages of `requirements/lambda.lock` (the dependency layer,
built into LAYER by `make bench-cold-start`) and the project's code, nothing from the dev virtualenv
(`-S`: no site-packages). The baseline runs the same way. Each case runs in a fresh interpreter and
times itself from before its first import to after its last, so interpreter start-up is left out on
both sides. Runs are interleaved (baseline, each function, baseline, …) so that a busy moment hits
every case alike; a first untimed round compiles the bytecode, as a Lambda package ships it.
Goal: every function ≤ 1.5 x the baseline (median of 7).

    python -m loadtests.bench_cold_start          # the measurement (`make bench-cold-start`)
    python -m loadtests.bench_cold_start --quick  # one round, no verdict (part of `make test`)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from loadtests.bench_transactions import REPORTS
from local.lambda_runtime.functions import load_functions

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / ".build" / "bench-layer"  # `uv pip install --target` of requirements/lambda.lock (Makefile)
GOAL_RATIO = 1.5
BASELINE = "import boto3\nboto3.client('dynamodb', region_name='us-east-1')"
TIMED = "import time\n_started = time.perf_counter()\n{code}\nprint((time.perf_counter() - _started) * 1000)"


def template_parameters() -> dict[str, str]:
    """What the root stack passes the services' stacks, for a stage named `bench`."""
    table, bucket = "appointments-bench", "appointments-audit-bench"
    return {
        "Stage": "bench",
        "TableName": table,
        "TableArn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}",
        "TableStreamArn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-01-01T00:00:00.000",
        "AuditTableName": f"{table}-audit",
        "AuditTableArn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}-audit",
        "AuditBucketName": bucket,
        "AuditBucketArn": f"arn:aws:s3:::{bucket}",
        "DependenciesLayerArn": "arn:aws:lambda:us-east-1:123456789012:layer:bench:1",
        "StaffIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_staffbench",
    }


def cases() -> dict[str, tuple[str, dict[str, str]]]:
    """name → (code, extra environment): the baseline, then one case per function."""
    found: dict[str, tuple[str, dict[str, str]]] = {"boto3 + DynamoDB client": (BASELINE, {})}
    for spec in load_functions(template_parameters()).values():
        module = spec.handler.rpartition(".")[0]
        found[spec.name] = (f"import {module}", spec.environment)
    return found


def run_once(code: str, extra_env: dict[str, str]) -> float:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{LAYER}{os.pathsep}{ROOT}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",  # nothing listens: the exporter only sends datagrams
        "_X_AMZN_TRACE_ID": "Root=1-5f84c7a1-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
        **extra_env,
    }
    done = subprocess.run(
        [sys.executable, "-S", "-c", TIMED.format(code=code)],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round, no verdict (for make test)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    if not (LAYER / "boto3").is_dir():
        parser.error(f"no dependency layer at {LAYER}: run `make bench-cold-start`, which builds it")

    measured = cases()
    for code, extra_env in measured.values():  # compile bytecode; not timed
        run_once(code, extra_env)
    timings: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(runs):
        for name, (code, extra_env) in measured.items():
            timings[name].append(run_once(code, extra_env))

    medians = {name: statistics.median(values) for name, values in timings.items()}
    baseline = medians["boto3 + DynamoDB client"]
    print(f"| init (median of {runs}, fresh interpreter) | ms | x baseline |")
    print("|---|---:|---:|")
    rows = []
    for name, ms in medians.items():
        ratio = ms / baseline
        rows.append({"case": name, "medianMs": round(ms, 1), "ratio": round(ratio, 3), "runsMs": timings[name]})
        print(f"| {name} | {ms:.1f} | {ratio:.2f} |")
    worst = max(ms / baseline for ms in medians.values())
    print(f"\nworst function: {worst:.2f} x baseline (goal ≤ {GOAL_RATIO})")

    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = REPORTS / f"bench-cold-start-{stamp}{'-quick' if args.quick else ''}.json"
    report.write_text(
        json.dumps({"measuredAt": stamp, "quick": args.quick, "goalRatio": GOAL_RATIO, "results": rows}, indent=2)
    )
    print(f"written to {report}")
    return 0 if args.quick or worst <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
