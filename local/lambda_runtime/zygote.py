"""One process per local stack that has imported the libraries every function is built on, and forks
each Lambda environment's worker from itself (decision 0033).

A worker started from nothing spends most of its init importing boto3, pydantic, Powertools and the
OpenTelemetry SDK; with eight functions that was ~1 s of CPU per stack start, and the imports were a
fifth of all CPU a test run spent. Forked, a worker imports only its own handler's modules. The
fork happens before anything of the function's is loaded: the child takes the function's variables,
working directory and log pipes, then runs `worker.main()` as a spawned worker would.

The parent side (`Zygote`) asks over a SOCK_SEQPACKET socket pair, passing the worker's three file
descriptors (stdout, stderr, its private channel) with SCM_RIGHTS; the zygote answers the pid. The
worker is the zygote's child, so the environment handles it through a pidfd (`ForkedProcess`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from typing import IO, Any

from local import processes

# What every function imports, in the order the handlers import it (`lazy_packages` first, so that
# Powertools' packages stay lazy in the workers as in Lambda). Nothing here reads the function's
# variables when imported: those arrive after the fork.
PRELOADED = (
    "services.common.lazy_packages",
    "boto3",
    "botocore.session",
    "pydantic",
    "msgspec",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler.api_gateway",
    "aws_lambda_powertools.event_handler.openapi.params",
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk.extension.aws.trace",
    "opentelemetry.propagators.aws",
    "local.lambda_runtime.worker",
)
# Powertools modules that read a function's variables once, when imported: read again in each fork,
# with the function's own (whether its first invocation is a cold start; the SDK's user agent).
READ_THE_ENVIRONMENT_WHEN_IMPORTED = (
    "aws_lambda_powertools.metrics.provider.cold_start",
    "aws_lambda_powertools.shared.user_agent",
)
READY_TIMEOUT_SECONDS = 30.0
ANSWER_TIMEOUT_SECONDS = 10.0  # a fork takes milliseconds; a zygote that does not answer is gone
MAX_REQUEST_BYTES = 1 << 20


class ZygoteError(RuntimeError):
    """The zygote could not fork a worker (it has exited, or does not answer): spawn one instead."""


class ForkedProcess:
    """A forked worker, as much of `subprocess.Popen` as an environment uses, held through the pidfd
    the zygote opened before it could reap the worker (so it names this process and no other). Its
    exit status is the zygote's to collect; `returncode` only says that it has exited (0) or not."""

    def __init__(self, pid: int, pidfd: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._pidfd: int | None = pidfd

    def poll(self) -> int | None:
        return self._exited(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._exited(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
        return code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):  # it has exited already
                signal.pidfd_send_signal(self._pidfd, number)

    def _exited(self, timeout: float | None) -> int | None:
        if self._pidfd is None:
            return self.returncode
        readable = select.poll()  # not select.select: descriptors past 1,023 are common under load
        readable.register(self._pidfd, select.POLLIN)
        if readable.poll(None if timeout is None else timeout * 1000):
            os.close(self._pidfd)
            self._pidfd, self.returncode = None, 0
        return self.returncode


class Zygote:
    """The parent's side: starts the zygote, and asks it for workers."""

    def __init__(self, env: Mapping[str, str], cwd: str) -> None:
        self._control, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = processes.spawn(
            processes.python_module_command("local.lambda_runtime.zygote"),
            env={**env, "_LOCAL_ZYGOTE_FD": str(child_end.fileno())},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=None,  # its own failures, if any, where the stack's are
            pass_fds=[child_end.fileno()],
        )
        child_end.close()
        self._lock = threading.Lock()
        self._control.settimeout(READY_TIMEOUT_SECONDS)
        try:
            ready = self._control.recv(64)
        except OSError:
            ready = b""
        if ready != b"ready":
            self.stop()
            raise RuntimeError("the Lambda zygote did not start (its error is above)")
        self._control.settimeout(ANSWER_TIMEOUT_SECONDS)

    def fork(self, env: Mapping[str, str], cwd: str, channel: int) -> ForkedProcess:
        """A worker with these variables, directory and channel; its stdout and stderr are pipes here."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        request = json.dumps({"env": dict(env), "cwd": cwd}).encode()
        try:
            with self._lock:
                socket.send_fds(self._control, [request], [out_write, err_write, channel])
                answer, fds, _, _ = socket.recv_fds(self._control, 64, 1)
            if not (answer and fds):  # end of file: it has exited
                raise ZygoteError("the Lambda zygote has exited")
        except (OSError, ZygoteError) as error:
            os.close(out_read)
            os.close(err_read)
            raise ZygoteError(f"the Lambda zygote did not fork a worker: {error}") from error
        finally:
            os.close(out_write)
            os.close(err_write)
        return ForkedProcess(int(answer), fds[0], os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb"))

    def stop(self) -> None:
        """After the environments have stopped their workers: the zygote reaps them and exits."""
        self._control.close()  # its loop ends at EOF
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a worker that would not stop: leave none behind
            processes.stop(self.process, timeout=2)


def _reap(_signal: int, _frame: Any) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _become_worker(control: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: take the function's variables, directory and pipes, and run the worker."""
    code = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a spawned worker has it
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        control.close()
        stdout, stderr, channel = fds
        devnull = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((devnull, 0), (stdout, 1), (stderr, 2)):
            os.dup2(source, target)
            os.close(source)
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["_LOCAL_RUNTIME_FD"] = str(channel)  # its number here, not in the parent
        os.chdir(request["cwd"])
        for name in READ_THE_ENVIRONMENT_WHEN_IMPORTED:
            importlib.reload(sys.modules[name])
        from local.lambda_runtime import worker

        worker.main()
    except BaseException:
        traceback.print_exc()
        code = 1
    # As a spawned worker ends: exit handlers run, stdout and stderr flushed; never back into the loop.
    sys.exit(code)


def main() -> None:
    processes.exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in `make run` is the stack's to handle
    control = socket.socket(fileno=int(os.environ.pop("_LOCAL_ZYGOTE_FD")))
    for module in PRELOADED:
        importlib.import_module(module)
    missing = [name for name in READ_THE_ENVIRONMENT_WHEN_IMPORTED if name not in sys.modules]
    assert not missing, f"not preloaded, so nothing to read again after the fork: {missing}"
    signal.signal(signal.SIGCHLD, _reap)
    control.sendall(b"ready")
    while True:
        data, fds, _, _ = socket.recv_fds(control, MAX_REQUEST_BYTES, 3)
        if not data:  # the stack is stopping: reap every worker, so that none is left a zombie
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            with contextlib.suppress(ChildProcessError):
                while True:
                    os.waitpid(-1, 0)
            return
        # The pidfd is opened before the worker can be reaped: it names this worker, whatever the pid's fate.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        pid = os.fork()
        if pid == 0:
            _become_worker(control, json.loads(data), fds)
        pidfd = os.pidfd_open(pid)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        for fd in fds:
            os.close(fd)
        socket.send_fds(control, [str(pid).encode()], [pidfd])
        os.close(pidfd)


if __name__ == "__main__":
    main()
