"""Child processes that never outlive the local stack.

Every process the stack starts (the AWS emulator, each Lambda worker) calls `exit_with_parent()`,
which ends it as soon as its parent is gone, so even a `kill -9` of `make run` leaves nothing
behind. (Linux's PR_SET_PDEATHSIG would not do: it fires when the *thread* that forked the child
exits, and the stack starts environments from short-lived threads.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any, Protocol


class Stoppable(Protocol):
    """What `stop` needs of a process: a `subprocess.Popen`, or a worker the zygote forked."""

    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


def exit_with_parent(poll_seconds: float = 0.5) -> None:
    """End this process (from a watchdog thread) once the process that started it has exited."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def spawn(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a child process tied to this one's lifetime."""
    return subprocess.Popen(
        list(args),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        pass_fds=tuple(pass_fds),
    )


def stop(process: Stoppable, timeout: float = 5.0) -> None:
    """Terminate a child, escalating to SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def python_module_command(module: str, *args: str) -> list[str]:
    """Run a module of this project with the current interpreter."""
    return [sys.executable, "-m", module, *args]


def project_root() -> str:
    """The repository root (the folder that holds `services/` and `local/`).

    `deploy.templates.ROOT` says the same; this one imports nothing, for every worker imports it."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
