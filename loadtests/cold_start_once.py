"""One cold start in this fresh interpreter, timed from before the first import to the first request's
answer; prints the milliseconds on the wall clock and of CPU. loadtests/bench_cold_start.py runs it as
`python -S -P loadtests/cold_start_once.py CASE SIDE` (only the layer and the project on the path).

CASE is a `marshal` file (the handler module, the event, the expected status, the recorded tape).
SIDE `function`: import the handler module (imports and module-level set-up), then call its
`lambda_handler` with the event: the composition root (settings, clients) and the first request.
SIDE `baseline`: `import boto3`, a plain client per AWS service, and the same calls with the same
parameters. SIDE `libraries`: the libraries every function is built on (FIXED_LIBRARIES) and
botocore, imported as the handlers import them (the collector paused until they have loaded,
`init_gc`), then the baseline's clients and calls, made as the functions make theirs (botocore's,
from the functions' session, no boto3: decision 0035): the least a function of this architecture
waits for, with none of the project's code but its init-time levers. Every side puts the tape on
the session that makes its clients before the first one exists, and gets the same answers from it,
so no request leaves the process.

Before the clock starts, only what the interpreter itself loads is loaded (`marshal` is built in):
everything the case imports, it pays for.
"""

import marshal
import os
import sys
import time

# Powertools' REST resolver with validation, its logger and metrics, pydantic, the OpenTelemetry SDK
# with X-Ray's ids and propagation: the architecture's fixed choices (conventions 2 and 11, decision
# 0009). `init_gc` and `lazy_packages` first, as each handler imports them, and the functions' botocore
# session: the floor takes the same init-time levers as the functions, or it would put their gain on
# the project's side (decisions 0021, 0035).
FIXED_LIBRARIES = (
    "services.common.init_gc",
    "services.common.lazy_packages",
    "services.common.aws_session",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler.api_gateway",
    "aws_lambda_powertools.event_handler.openapi.params",
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
    "pydantic.main",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk.extension.aws.trace",
    "opentelemetry.propagators.aws",
)


class Context:
    """The context Lambda's Python runtime passes a handler (as local/lambda_runtime/worker.py makes it)."""

    def __init__(self) -> None:
        self.aws_request_id = "cold-start-request"
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:bench"
        self.identity = None
        self.client_context = None
        self._deadline = time.time() + 10

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def main() -> None:
    path, side = sys.argv[1], sys.argv[2]
    with open(path, "rb") as file:
        case = marshal.load(file)
    context = Context()

    started, cpu_started = time.perf_counter(), time.process_time()
    if side == "function":
        import importlib

        handler = importlib.import_module(case["module"]).lambda_handler
        from loadtests.tape import Tape, load
        from services.common import aws_session

        tape = Tape()
        tape.exchanges = load(case)[0]
        tape.install(aws_session.session())  # the services' clients are made by their own botocore session
        tape.replay()
        answer = handler(case["event"], context)
    else:
        if side == "libraries":
            import importlib

            for library in FIXED_LIBRARIES:
                importlib.import_module(library)
            importlib.import_module("services.common.init_gc").done()  # the end of init, as each handler's
            # The functions' clients: botocore's, from a session whose loader knows their services (0035).
            session = importlib.import_module("services.common.aws_session").session()
        else:
            import boto3

            boto3.setup_default_session()
            session = boto3.DEFAULT_SESSION  # a boto3 session: its clients are made by `.client`

        from loadtests.tape import Tape, load

        tape = Tape()
        tape.exchanges = load(case)[0]
        tape.install(session)
        tape.replay()
        clients = {}
        for service, method, params in case["calls"]:
            if service not in clients:
                make = session.create_client if side == "libraries" else session.client
                clients[service] = make(service)
            try:
                getattr(clients[service], method)(**params)
            except Exception as error:  # a refusal recorded as the function received it is an answer too
                if getattr(error, "response", None) is None:
                    raise
        answer = None
    elapsed, cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000

    tape.rewind()  # every recorded answer was asked for
    if answer is not None:
        status = answer.get("statusCode")
        if status != case["status"] or answer.get("batchItemFailures"):
            sys.exit(f"the first request answered {status} {str(answer)[:500]}; the recording {case['status']}")
    print(elapsed, cpu)


if __name__ == "__main__":
    main()
