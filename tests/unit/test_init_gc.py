"""Each function's init runs without garbage collection, and leaves the collector on (services/common/init_gc.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.bench_cold_start import handler_imports

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import gc, json
def older() -> int:  # collections of generations 1 and 2: the ones that walk long-lived objects
    return sum(generation["collections"] for generation in gc.get_stats()[1:])
before = older()
{code}
print(json.dumps({{
    "collections": older() - before,
    "enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
}}))
"""
FUNCTIONS = handler_imports()


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_init_collects_nothing_and_then_turns_the_collector_back_on(function: str) -> None:
    code, environment = FUNCTIONS[function]
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        env={**os.environ, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", **environment},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # Without init_gc these imports run over a dozen such collections (and 130 young ones); with the
    # collector left off after init, a container would never collect a reference cycle again.
    assert seen["collections"] == 0
    assert seen["enabled"] is True
    assert seen["frozen"] > 50_000  # boto3, Powertools, pydantic and our modules, out of later collections
