"""The local stack: the whole product on one machine, on emulated AWS, for `make run` and the tests.

Nothing here ships: `deploy/` builds what goes to AWS, and `services/` never imports this package.
One subpackage per AWS service it stands in for (but `emulator/`, one process for the three data
services moto serves), each saying in its docstring what it reproduces and what it deliberately does
not (docs/decisions/0001-local-stack.md gathers the list):

- `emulator/`: DynamoDB (with Streams), S3 and SQS: moto's server in a process of its own;
- `cloudformation/`: the templates' intrinsic functions resolved and their resources created;
- `lambda_runtime/`: Lambda: functions in worker processes, and the stream's event source mapping;
- `apigateway/`: the REST API from the OpenAPI document, with the Cognito authorizer;
- `cognito/`: the two user pools (customers, staff): their keys and a token mint;
- `cloudwatch/`: logs, Logs Insights, metrics, metric math, alarms and the dashboard;
- `xray/`: the daemon the functions send spans to, and traces as the console shows them;
- `console/`: `/_ops`, the operations console an on-call engineer opens in AWS.

The composition sits on top: `stack.py` starts them in dependency order, `__main__.py` is
`make run`, `make token` and `make faults`, `seed.py` writes the demo data, `account.py` is the
account and region it pretends to be, `clock.py` its time (`/_local/clock` moves it forward), and
`processes.py` keeps every child process from outliving it.
"""
