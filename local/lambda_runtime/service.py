"""The local Lambda service: every function of the stack, each with its own runtime."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from local import processes
from local.clock import StackClock
from local.cloudwatch.logs import LogStreams
from local.lambda_runtime.concurrency import ACCOUNT_LIMIT, AccountConcurrency
from local.lambda_runtime.environment import lambda_base_environment
from local.lambda_runtime.function_runtime import MAX_ENVIRONMENTS, FunctionRuntime
from local.lambda_runtime.functions import FunctionSpec
from local.lambda_runtime.zygote import Zygote


@dataclass
class LambdaService:
    """All of the stack's functions, by logical id."""

    functions: dict[str, FunctionRuntime]
    zygote: Zygote | None = None

    @classmethod
    def create(
        cls,
        specs: dict[str, FunctionSpec],
        endpoint_url: str,
        log_dir: Path,
        task_root: str | None = None,
        xray_daemon: str = "127.0.0.1:2000",
        account_limit: int = ACCOUNT_LIMIT,
        max_environments: int = MAX_ENVIRONMENTS,
        clock: StackClock | None = None,
    ) -> LambdaService:
        """The functions, sharing one account's concurrency, each with up to `max_environments` workers."""
        base_env = lambda_base_environment(endpoint_url, task_root or processes.project_root(), xray_daemon)
        reservations = {s.name: s.reserved_concurrency for s in specs.values() if s.reserved_concurrency is not None}
        account = AccountConcurrency(account_limit, reservations)
        zygote = Zygote(base_env, base_env["LAMBDA_TASK_ROOT"])
        try:
            runtimes = {
                logical_id: FunctionRuntime(
                    spec,
                    base_env,
                    LogStreams(log_dir / f"{spec.name}.log", now=clock.now if clock else time.time),
                    account=account,
                    max_environments=max_environments,
                    clock=clock,
                    zygote=zygote,
                )
                for logical_id, spec in specs.items()
            }
        except BaseException:
            zygote.stop()
            raise
        return cls(runtimes, zygote)

    def warm_all(self) -> dict[str, float | Exception]:
        """Start one environment per function, in parallel; answer init ms (or the failure) per function."""
        results: dict[str, float | Exception] = {}

        def warm(logical_id: str, runtime: FunctionRuntime) -> None:
            try:
                results[logical_id] = runtime.warm()
            except Exception as error:  # reported in the banner, never hidden
                results[logical_id] = error

        threads = [threading.Thread(target=warm, args=item) for item in self.functions.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def shutdown(self) -> None:
        for runtime in self.functions.values():
            runtime.shutdown()
        if self.zygote is not None:
            self.zygote.stop()
