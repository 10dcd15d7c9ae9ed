"""One Lambda execution environment: a worker process, its variables and its private channel.

An environment is started with the variables Lambda sets (`lambda_base_environment`, the same for
every function, plus `function_environment`, the function's own), runs `worker.py` (forked by the
stack's zygote, `zygote.py`, or spawned), and talks to the runtime over a socket pair, so its stdout
and stderr remain its log stream.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import IO, Any

from local import processes
from local.account import REGION
from local.cloudwatch.logs import LogStreams
from local.lambda_runtime.functions import FunctionSpec
from local.lambda_runtime.zygote import ForkedProcess, Zygote, ZygoteError

INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit on the init phase of an on-demand environment


def function_environment(
    spec: FunctionSpec, base_env: dict[str, str], log_stream: str, provisioned: bool = False
) -> dict[str, str]:
    """What Lambda puts in one function's environment: the base, the resource's variables, its own."""
    return {
        **base_env,
        **spec.environment,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency" if provisioned else "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_LOG_FORMAT": spec.log_format.upper() if spec.log_format == "JSON" else "TEXT",
        "_HANDLER": spec.handler,
        # Not Lambda's: botocore names the function in each request's User-Agent (`app/<name>`), so the
        # local capacity meter can tell which function made a call within a trace several continue.
        "AWS_SDK_UA_APP_ID": spec.name,
        **({"AWS_LAMBDA_LOG_LEVEL": spec.application_log_level} if spec.application_log_level else {}),
    }


class Environment:
    """One execution environment: a worker process and its private channel."""

    def __init__(
        self,
        spec: FunctionSpec,
        base_env: dict[str, str],
        logs: LogStreams,
        provisioned: bool,
        clock_offset: float = 0.0,
        zygote: Zygote | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        today = datetime.fromtimestamp(time.time() + clock_offset, UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{today}/[$LATEST]{self.id}"
        parent_end, child_end = socket.socketpair()
        env = {
            **function_environment(spec, base_env, self.log_stream, provisioned),
            "_LOCAL_RUNTIME_FD": str(child_end.fileno()),
            "_LOCAL_CLOCK_OFFSET": str(clock_offset),  # the stack's clock (local/clock.py); the worker removes it
        }
        self.started = time.perf_counter()
        try:
            self.process = self._forked_or_spawned(zygote, env, child_end.fileno())
        finally:
            child_end.close()
        self.channel = parent_end
        self.reader = parent_end.makefile("rb")
        self.init_duration_ms: float | None = None
        self._drains = [
            threading.Thread(target=self._drain, args=(pipe, logs), daemon=True)
            for pipe in (self.process.stdout, self.process.stderr)
        ]
        for drain in self._drains:
            drain.start()

    @staticmethod
    def _forked_or_spawned(
        zygote: Zygote | None, env: dict[str, str], channel: int
    ) -> subprocess.Popen[bytes] | ForkedProcess:
        if zygote is not None:
            try:
                return zygote.fork(env, env["LAMBDA_TASK_ROOT"], channel)
            except ZygoteError:  # it has gone: this environment starts as it would without one
                pass
        return processes.spawn(
            processes.python_module_command("local.lambda_runtime.worker"),
            env=env,
            cwd=env["LAMBDA_TASK_ROOT"],
            pass_fds=[channel],
        )

    def _drain(self, pipe: IO[bytes] | None, logs: LogStreams) -> None:
        assert pipe is not None
        for raw in pipe:
            logs.write(self.log_stream, raw.decode("utf-8", "replace").rstrip("\n"))

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message from the worker, or None if it died or the time ran out."""
        self.channel.settimeout(max(timeout, 0.001))
        try:
            line = self.reader.readline()
        except (TimeoutError, OSError):
            return None
        if not line:
            return None
        message: dict[str, Any] = json.loads(line)
        return message

    def wait_ready(self) -> dict[str, Any] | None:
        message = self.receive(INIT_TIMEOUT_SECONDS)
        self.init_duration_ms = (time.perf_counter() - self.started) * 1000
        return message

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.channel.close()
        for drain in self._drains:
            drain.join(timeout=1)

    def shutdown(self) -> None:
        self.channel.close()  # the worker's loop ends at EOF
        processes.stop(self.process, timeout=2)
        for drain in self._drains:
            drain.join(timeout=1)


def lambda_base_environment(endpoint_url: str, task_root: str, xray_daemon: str = "127.0.0.1:2000") -> dict[str, str]:
    """The variables Lambda sets in every environment, plus the one local difference: the endpoint.

    botocore honours `AWS_ENDPOINT_URL`, so handler code reaches the emulator without knowing it.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": task_root,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIALOCALSTACKFAKE",
        "AWS_SECRET_ACCESS_KEY": "local-secret-access-key",
        "AWS_SESSION_TOKEN": "local-session-token",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,  # Lambda's default; the local stack's daemon is elsewhere
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_ENDPOINT_URL": endpoint_url,
        # the least-privilege test's record of AWS calls (aws_calls.py); the worker removes it
        **({"_LOCAL_AWS_CALL_LOG": log} if (log := os.environ.get("APPOINTMENTS_AWS_CALL_LOG")) else {}),
    }
