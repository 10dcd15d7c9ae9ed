"""What `GET /health` reports, and when the service counts as healthy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from msgspec import Struct


class TableStatus(Struct, frozen=True):
    name: str
    reachable: bool
    latency_ms: float | None = None


class TableProbe(Protocol):
    def probe(self) -> TableStatus:
        """Check that the table answers."""
        ...


class CachedProbe:
    """A probe answered from its last result for `seconds`: `/health` answers anyone, as often as they
    like, and must not turn that into as many DynamoDB requests (a load balancer or a curious crowd
    polling it would be billed, and could throttle the table)."""

    def __init__(self, probe: TableProbe, seconds: float, clock: Callable[[], float]) -> None:
        self.probe, self.seconds, self.clock = probe, seconds, clock
        self._last: tuple[float, TableStatus] | None = None

    def __call__(self) -> TableStatus:
        now = self.clock()
        if self._last is None or now - self._last[0] >= self.seconds:
            self._last = (now, self.probe.probe())
        return self._last[1]


class HealthReport(Struct, frozen=True):
    version: str
    stage: str
    tzdata_version: str
    table: TableStatus

    @property
    def healthy(self) -> bool:
        return self.table.reachable

    def to_json(self) -> dict[str, object]:
        # Not the table's name: /health answers anyone, and names are for those who hold a role.
        table: dict[str, object] = {"reachable": self.table.reachable}
        if self.table.latency_ms is not None:
            table["latencyMs"] = round(self.table.latency_ms, 2)
        return {
            "status": "ok" if self.healthy else "degraded",
            "version": self.version,
            "stage": self.stage,
            "tzdataVersion": self.tzdata_version,
            "table": table,
        }


def check_health(
    version: str, stage: str, tzdata_version: str, probe: TableProbe | Callable[[], TableStatus]
) -> HealthReport:
    status = probe() if callable(probe) else probe.probe()
    return HealthReport(version, stage, tzdata_version, status)
