from __future__ import annotations

import socket

import pytest
import pytest_socket


@pytest.mark.filterwarnings("ignore:A test tried to use socket")  # the attempt is the point of the test
def test_unit_tests_cannot_open_network_sockets() -> None:
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Unix socket pairs stay allowed: the Lambda runtime talks to its workers over them.
    left, right = socket.socketpair()
    left.close()
    right.close()
