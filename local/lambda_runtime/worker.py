"""One Lambda execution environment: the child process side of `environment.py`.

It does what the Lambda Python runtime does: imports the handler named by `_HANDLER` once (the init
phase), then serves invocations one at a time, giving each a context object and setting
`_X_AMZN_TRACE_ID`. Requests and results travel over a private socket (its descriptor in
`_LOCAL_RUNTIME_FD`, removed from the environment before the handler is imported), so the function's
stdout and stderr stay free to be its log stream, as in Lambda. The process's time is the local
stack's clock (`local/clock.py`): its offset arrives with the environment and with each invocation.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from local.account import ACCOUNT_ID
from local.clock import ProcessTime
from local.processes import exit_with_parent

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The context object the Python runtime passes to a handler."""

    def __init__(self, request_id: str, deadline_epoch_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        region = os.environ["AWS_REGION"]
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.function_name}"
        self.identity = None
        self.client_context = None
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_epoch_ms - int(time.time() * 1000))


def _error_payload(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def _log_error(payload: dict[str, Any], request_id: str | None) -> None:
    """Report an uncaught error in the log stream as the runtime does, in the function's log format."""
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        record = {"timestamp": _now_iso(), "level": "ERROR", "message": payload["errorMessage"], **payload}
        if request_id:
            record["requestId"] = request_id
        print(json.dumps(record), flush=True)
    else:
        print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", flush=True)
        print("".join(payload["stackTrace"]), end="", flush=True)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def _load_handler(spec: str) -> Handler:
    module_name, _, function_name = spec.rpartition(".")
    module = importlib.import_module(module_name)
    handler: Handler = getattr(module, function_name)
    return handler


def _max_memory_mb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def serve(channel: socket.socket, handler: Handler, process_time: ProcessTime) -> None:
    """Answer invocation requests until the parent closes the channel."""
    reader = channel.makefile("rb")
    for line in reader:
        request = json.loads(line)
        process_time.move_to(float(request.get("clockOffsetSeconds", 0.0)))
        request_id = request["requestId"]
        os.environ["_X_AMZN_TRACE_ID"] = request["traceId"]
        context = LambdaContext(request_id, request["deadlineEpochMs"])
        started = time.perf_counter()
        reply: dict[str, Any]
        try:
            result = handler(request["event"], context)
            reply = {"type": "result", "payload": json.dumps(result)}
        except Exception as error:  # the runtime reports any uncaught error to the invoker
            payload = _error_payload(error)
            _log_error(payload, request_id)
            reply = {"type": "error", "payload": payload}
        reply["durationMs"] = (time.perf_counter() - started) * 1000
        reply["maxMemoryUsedMb"] = _max_memory_mb()
        sys.stdout.flush()
        sys.stderr.flush()
        channel.sendall(json.dumps(reply).encode() + b"\n")


def main() -> None:
    exit_with_parent()
    channel = socket.socket(fileno=int(os.environ.pop("_LOCAL_RUNTIME_FD")))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    call_log = os.environ.pop("_LOCAL_AWS_CALL_LOG", None)  # never part of the function's environment
    process_time = ProcessTime()
    process_time.move_to(float(os.environ.pop("_LOCAL_CLOCK_OFFSET", "0")))  # before init, which may read it
    started = time.perf_counter()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except Exception as error:  # an init failure is reported, then the environment is discarded
        payload = _error_payload(error, "Runtime.ImportModuleError")
        _log_error(payload, None)
        channel.sendall(json.dumps({"type": "init_error", "payload": payload}).encode() + b"\n")
        return
    init_ms = (time.perf_counter() - started) * 1000
    if call_log:  # after the init timer: recording is the tests' cost, not the function's
        from local.lambda_runtime.aws_calls import record_calls

        record_calls(call_log)
    channel.sendall(json.dumps({"type": "ready", "initDurationMs": init_ms}).encode() + b"\n")
    serve(channel, handler, process_time)


if __name__ == "__main__":
    main()
