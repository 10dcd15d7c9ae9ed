"""Emulated AWS for integration tests: the same emulator process `make run` uses, on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.emulator import EmulatorProcess
from local.provision import DataStack, deploy_data_stack
from local.stack import aws_client


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess.start(log_path=tmp_path_factory.mktemp("emulator") / "emulator.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def dynamodb(emulator: EmulatorProcess) -> Any:
    return aws_client("dynamodb", emulator.endpoint)


@pytest.fixture(scope="session")
def s3(emulator: EmulatorProcess) -> Any:
    return aws_client("s3", emulator.endpoint)


@pytest.fixture(scope="session")
def data_stack(dynamodb: Any, s3: Any) -> DataStack:
    """The data stack, created from cloudformation/data.yaml, once per test session."""
    return deploy_data_stack(dynamodb, s3, stage="it")
