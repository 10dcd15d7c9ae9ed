"""Stands in for AWS Lambda: the stack's functions in worker processes, and the stream's event source
mapping.

- `functions.py`: each function as its `AWS::Lambda::Function` resource defines it (handler, memory,
  timeout, environment, reserved concurrency, logging), resolved as CloudFormation would;
- `environment.py` and `worker.py`: one execution environment, a process with Lambda's variables
  that imports the handler once (init) and then serves one invocation at a time over a private
  socket, so its stdout and stderr stay its log stream;
- `zygote.py`: one process per stack that has imported the libraries every function uses, and
  forks each environment's worker (decision 0033);
- `function_runtime.py`: a function's pool of environments: reuse, cold starts with their init duration,
  concurrency as the account counts it (`concurrency.py`), queueing past the local environments,
  timeouts that kill the environment; `platform_records.py` writes START,
  END and REPORT (or their JSON events) around each invocation;
- `service.py`: every function of the stack, warmed in parallel at start;
- `event_source_mapping.py` and `stream_records.py`: the table's stream delivered to the audit
  consumer as Lambda delivers it: batches gathered over the batching window, partial batch
  responses, bisection, retries, the maximum record age, then the failed range to the on-failure
  destination;
- `event_filtering.py`: the mapping's `FilterCriteria`, the part of Lambda's filter rule syntax the
  template uses (anything else is refused, not ignored);
- `aws_calls.py`: a record of every AWS call a function makes, for the least-privilege test.

Handler code never knows it runs locally: the one added variable is `AWS_ENDPOINT_URL`.

Deliberately not emulated (or not yet):

- an environment per concurrent execution: past `--environments` worker processes per function
  (two per CPU core by default) an invocation waits for a free one and its log stream says so;
  Lambda throttles only past the reservation or the account's pool, and so does the local runtime;
- the deployment package: functions run from the working tree on this machine's Python with the
  dev virtualenv, not from the packaged code and layer on the Lambda runtime (`make package` checks
  every handler against the code it ships);
- an init's full cost: the workers are forked with boto3, pydantic, Powertools and OpenTelemetry
  already imported, so a local init duration is the handler's own modules (`make bench-cold-start`
  measures init as Lambda runs it);
- the memory limit: memory used is reported from the process's peak RSS, never enforced, and CPU
  does not scale with memory;
- the Runtime API, extensions, SnapStart and function URLs;
- more than one shard, `ParallelizationFactor`, tumbling windows and filter criteria: the audit
  mapping uses none of them;
- the stream's 24-hour retention (moto keeps every record) and the 6 MB limit on a batch's payload
  (100 audit records are far below it).
"""
