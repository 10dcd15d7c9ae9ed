"""The local stack's clock: real time plus an offset that only moves forward (`/_local/clock`).

What happens days later (expired items, holds, reminders, retries) is tested by moving this clock,
not by waiting. One offset is the whole stack's notion of now:

- in the stack's own process, `StackClock.now()` is what the gateway (token expiry, request times),
  the metric store, the alarm evaluation, the event source mapping (record ages) and the console
  read instead of `time.time()`;
- in the processes it starts, the functions' workers and the emulator, `ProcessTime` moves the
  process's time itself with time-machine (`time.time`, `datetime.now`, …), so the services'
  clock (`services/common/clock.py`), Powertools' log and EMF timestamps, stream records and TTL
  expiry all move with it, and no service carries a hook for it.

The offset reaches a worker with each invocation and the emulator when it changes. time-machine is
imported only once the clock has moved, so a stack whose clock never moves runs exactly as before.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MAX_OFFSET_SECONDS = 10 * 365 * 24 * 3600  # ten years: dates stay printable, TTLs meaningful


class StackClock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self.listeners: list[Callable[[float], None]] = []  # e.g. the emulator, told the new offset

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> float:
        """The stack's now, as epoch seconds."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move now forward by `seconds` (> 0: the clock never goes back); answers the new offset.

        The listeners (the emulator) move first, and the offset only once they all have: the
        functions, which read it at each invocation, never run ahead of the data's time."""
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError("advanceSeconds must be a number greater than 0")
        with self._lock:
            offset = self._offset + seconds
            if offset > MAX_OFFSET_SECONDS:
                raise ValueError(f"the clock moves at most {MAX_OFFSET_SECONDS} seconds ahead of the machine's")
            for listener in self.listeners:
                listener(offset)
            self._offset = offset
        return offset

    def state(self) -> dict[str, Any]:
        """`{now, offsetSeconds}`, as `/_local/clock` answers."""
        now = datetime.fromtimestamp(self.now(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"now": now, "offsetSeconds": self._offset}


class ProcessTime:
    """This whole process's time, moved by an offset from real time (a worker's, the emulator's)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._coordinates: Any = None
        self._lock = threading.Lock()

    def move_to(self, offset: float) -> None:
        with self._lock:
            if offset == self.offset:
                return
            if self._coordinates is None:
                import time_machine  # only once time has moved: an unmoved stack never loads it

                # `time.time()` is real here: nothing has travelled yet.
                self._coordinates = time_machine.travel(time.time() + offset, tick=True).start()
                time.time()  # time-machine's moving clock starts ticking at its first read: now
            else:
                self._coordinates.shift(offset - self.offset)
            self.offset = offset
