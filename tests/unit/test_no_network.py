from __future__ import annotations

import socket

import pytest
import pytest_socket


def test_unit_tests_cannot_open_network_sockets() -> None:
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    # Unix socket pairs stay allowed: the Lambda runtime talks to its workers over them.
    left, right = socket.socketpair()
    left.close()
    right.close()
