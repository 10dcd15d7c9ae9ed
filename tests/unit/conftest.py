"""Unit tests never touch the network: every socket but a Unix one (the runtime's pipes) is refused."""

from __future__ import annotations

import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def _no_network() -> None:
    pytest_socket.disable_socket(allow_unix_socket=True)
