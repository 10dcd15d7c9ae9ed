"""Powertools' event handler and data classes packages load only the names a function uses
(services/common/lazy_packages.py), answer every name their `__init__` defines, and a future
`__init__` that does more is imported as usual."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.bench_cold_start import handler_imports
from services.common.lazy_packages import DEFERRED, names_imported

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = handler_imports()


def run(code: str, environment: dict[str, str] | None = None) -> dict[str, object]:
    """`code` in a fresh interpreter (nothing imported yet); it prints one JSON answer."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", **(environment or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.mark.parametrize("package", DEFERRED)
def test_lazy_packages_installed_init_only_imports_names(package: str) -> None:
    """A Powertools release whose `__init__` does more fails here, before the cold start pays again."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.loader is not None
    names = names_imported(package, spec.loader.get_source(package))  # type: ignore[attr-defined]
    assert names, f"{package}'s __init__ now does more than import names: lazy_packages imports it as usual"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_lazy_packages_handler_loads_no_resolver_it_does_not_use(function: str) -> None:
    """(The audit function's batch utility loads asyncio and the Kafka, S3 and SQS event classes itself.)"""
    code, environment = FUNCTIONS[function]
    answer = run(
        f"{code}\nimport json, sys\nfrom services.common import lazy_packages\n"
        "print(json.dumps({'deferred': lazy_packages.deferred, 'loaded': sorted(m for m in sys.modules if m in "
        "{'aws_lambda_powertools.event_handler.appsync', 'aws_lambda_powertools.event_handler.bedrock_agent',"
        " 'aws_lambda_powertools.utilities.data_classes.code_pipeline_job_event',"
        " 'aws_lambda_powertools.utilities.data_classes.connect_contact_flow_event'})}))",
        environment,
    )
    assert answer == {"deferred": dict.fromkeys(DEFERRED, True), "loaded": []}


@pytest.mark.parametrize("package", DEFERRED)
def test_lazy_packages_deferred_package_answers_every_name_as_its_init_would(package: str) -> None:
    answer = run(
        "import importlib, json\n"
        "from services.common import lazy_packages\n"
        f"package = importlib.import_module({package!r})\n"
        "spec = importlib.util.find_spec(package.__name__)\n"
        "names = lazy_packages.names_imported(package.__name__, spec.loader.get_source(package.__name__))\n"
        "same = [name for name, (module, original) in names.items()"
        " if getattr(package, name) is getattr(importlib.import_module(module), original)]\n"
        "try:\n    package.no_such_name\n    missing = 'answered'\n"
        "except AttributeError:\n    missing = 'AttributeError'\n"
        "print(json.dumps({'names': len(names), 'same': len(same), 'all': sorted(package.__all__) == sorted(names),"
        " 'missing': missing, 'deferred': lazy_packages.deferred[package.__name__]}))"
    )
    assert answer["deferred"] is True
    assert answer["names"] == answer["same"] and int(str(answer["names"])) > 5
    assert answer["all"] is True and answer["missing"] == "AttributeError"


def test_lazy_packages_init_that_does_more_is_not_deferred() -> None:
    package = "aws_lambda_powertools.event_handler"
    assert names_imported(package, "from .api_gateway import Response\n__all__ = ['Response']\n") == {
        "Response": (f"{package}.api_gateway", "Response")
    }
    assert names_imported(package, "from .api_gateway import Response\nregister()\n") is None
    assert names_imported(package, "from os import path\n") is None  # from outside: could have effects
    assert names_imported(package, "from .api_gateway import *\n") is None
    assert names_imported(package, "import json\n") is None
