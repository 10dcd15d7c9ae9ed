"""What `GET /health` reports, and when the service counts as healthy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TableStatus:
    name: str
    reachable: bool
    latency_ms: float | None = None


class TableProbe(Protocol):
    def probe(self) -> TableStatus:
        """Check that the table answers."""
        ...


@dataclass(frozen=True)
class HealthReport:
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


def check_health(version: str, stage: str, tzdata_version: str, probe: TableProbe) -> HealthReport:
    return HealthReport(version, stage, tzdata_version, probe.probe())
