"""Lambda's concurrency as an account has it: reservations, and the unreserved pool the others share.

An invocation is one concurrent execution from the moment it is accepted until it ends. A function
with `ReservedConcurrentExecutions` runs at most that many at once and never takes from the pool; the
others share what the account limit leaves unreserved (1,000 by default per account and Region).
Past its limit an invocation is throttled (TooManyRequestsException), and only then: the worker
processes this machine can afford are a different limit, the runtime's, and beyond them an
invocation waits for an environment instead (`function_runtime.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

ACCOUNT_LIMIT = 1000  # Lambda's default concurrent executions per account and Region
MIN_UNRESERVED = 100  # Lambda refuses a reservation that would leave less than this unreserved


class ConcurrencyError(ValueError):
    """Reservations that Lambda would refuse (PutFunctionConcurrency's limit)."""


class AccountConcurrency:
    def __init__(self, limit: int = ACCOUNT_LIMIT, reservations: Mapping[str, int] | None = None) -> None:
        self.limit = limit
        self.reservations = dict(reservations or {})
        reserved = sum(self.reservations.values())
        if self.reservations and limit - reserved < MIN_UNRESERVED:
            raise ConcurrencyError(
                f"reserving {reserved} of an account limit of {limit} leaves less than {MIN_UNRESERVED} unreserved"
            )
        self.unreserved = limit - reserved
        self._running: dict[str, int] = {}
        self._unreserved_running = 0
        self._lock = threading.Lock()

    def acquire(self, function: str) -> bool:
        """Count one more execution of `function`, or answer False when Lambda would throttle it."""
        with self._lock:
            reserved = self.reservations.get(function)
            running = self._running.get(function, 0)
            if reserved is not None:
                if running >= reserved:
                    return False
            elif self._unreserved_running >= self.unreserved:
                return False
            else:
                self._unreserved_running += 1
            self._running[function] = running + 1
            return True

    def release(self, function: str) -> None:
        with self._lock:
            self._running[function] -= 1
            if function not in self.reservations:
                self._unreserved_running -= 1

    def running(self, function: str) -> int:
        """Executions of `function` in flight now."""
        with self._lock:
            return self._running.get(function, 0)

    def limit_of(self, function: str) -> int:
        """The most executions `function` may have at once: its reservation, else the unreserved pool."""
        return self.reservations.get(function, self.unreserved)
