"""Emulated AWS for the local stack: moto in server mode on loopback, one request at a time.

moto's backends are not thread-safe: racing conditional transactions from many threads produce
phantom writes and lost updates. Every request therefore runs under one lock. The work is
GIL-bound anyway, so serializing costs no measurable throughput (../shared/reference/
local-emulation.md). With the lock held, the transaction rewrite in `transactions.py` is also safe.

Run as `python -m local.emulator --port 0`; it prints `READY <port>` once it is listening.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

from local import processes
from local.emulator.clock import ClockControl
from local.emulator.faults import FaultInjector

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SerializedApp:
    """A WSGI wrapper that lets one request at a time into the wrapped application."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self.lock = threading.Lock()  # also the TTL sweeper's: it changes tables between requests

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        with self.lock:
            # The response body must be produced inside the lock too: moto builds it lazily.
            return [b"".join(self._app(environ, start_response))]


class LoopbackOnly:
    """Only requests addressed to this machine's loopback, as the local gateway does (DNS rebinding):
    the emulator holds the data and takes `/_faults` and `/_clock`, so a web page that points a name
    of its own at 127.0.0.1 must not reach it either. Its requests carry that name as `Host`."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        host, port = str(environ.get("HTTP_HOST", "")).lower(), environ.get("SERVER_PORT")
        if host in {f"127.0.0.1:{port}", f"localhost:{port}"}:
            return self.app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [f"The emulator answers only 127.0.0.1:{port} or localhost:{port}.".encode()]


def build_app(patched: bool = True) -> tuple[ClockControl, SerializedApp]:
    """moto's multi-service WSGI app, patched, metered and serialized, behind EventBridge's refusals
    and journal (event_bus.py), the fault injector and the clock; answers the app and its serialized
    core (whose lock the TTL sweeper takes). Inside the lock, `/_schedules/due` reads moto's schedules
    (due_schedules.py).

    The capacity meter sits inside the lock: it reads the items a request touches just before and
    just after moto runs it, and tells the read consistency layer (the `staleReadsMs` fault) what each
    write changed.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from local.emulator import overheads, refusals, scheduler_refusals, table_exports, transactions
    from local.emulator.capacity import CapacityMeter
    from local.emulator.consistency import ReadConsistency
    from local.emulator.due_schedules import DueSchedules
    from local.emulator.event_bus import EventBusTap

    refusals.install()
    scheduler_refusals.install()
    table_exports.install()
    overheads.install()
    if patched:
        transactions.install()
    meter = CapacityMeter(DomainDispatcherApplication(create_backend_app))
    consistency = ReadConsistency(meter)
    meter.write_listeners.append(consistency.written)
    serialized = SerializedApp(DueSchedules(consistency))
    bus = EventBusTap(serialized)
    faults = FaultInjector(bus)
    faults.plan_listeners.append(lambda plan: setattr(consistency, "staleness_ms", plan.staleReadsMs))
    faults.plan_listeners.append(lambda plan: setattr(bus, "failure_share", plan.eventsPutFailure))
    return ClockControl(faults), serialized


def serve(host: str, port: int, patched: bool = True) -> None:
    """Serve the emulator until SIGTERM or SIGINT."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from local.emulator.time_to_live import Sweeper

    processes.exit_with_parent()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app, serialized = build_app(patched)
    server = make_server(host, port, LoopbackOnly(app), threaded=True, request_handler=MotoRequestHandler)
    sweeper = Sweeper(serialized.lock).start()

    def shut_down(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    print(f"READY {server.server_port}", flush=True)
    # Nobody reads stdout after READY: send anything printed later to the log, never to a full pipe.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server.serve_forever()
    sweeper.stop()


@dataclass
class EmulatorProcess:
    """The emulator as a child process of the local stack (or of a test)."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls, log_path: Path | None = None, port: int = 0, timeout: float = 30.0, patched: bool = True
    ) -> EmulatorProcess:
        """Start the emulator on loopback and wait until it listens."""
        log: IO[Any] | int = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        options = [] if patched else ["--unpatched"]
        process = processes.spawn(
            processes.python_module_command("local.emulator", "--port", str(port), *options),
            cwd=processes.project_root(),
            stderr=log,
        )
        if not isinstance(log, int):
            log.close()
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("READY "):
            processes.stop(process)
            raise RuntimeError(f"the AWS emulator did not start (said {line!r}); see {log_path}")
        return cls(process=process, port=int(line.split()[1]))

    def stop(self) -> None:
        processes.stop(self.process)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--unpatched", action="store_true", help="keep moto's own TransactWriteItems (for benchmarks only)"
    )
    args = parser.parse_args(argv)
    serve(args.host, args.port, patched=not args.unpatched)


if __name__ == "__main__":
    main()
