"""Stands in for CloudFormation: the templates of `cloudformation/` resolved and their resources made.

The local stack never describes a table, a bucket, a queue or a function on its own. `resolver.py`
evaluates the intrinsic functions the templates use (`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::Join`,
`Fn::If`, `Fn::Select`, `Fn::Split`, conditions) with the stage's parameters and answers what `Ref`
would locally; `provision.py` turns the data stack's table and bucket and a service's queues into the
API calls CloudFormation would make against the emulator. Templates are read as packaging reads them
(`deploy/templates.py`). So the table the tests and `make run` use is the table `make deploy` creates.

Deliberately not emulated:

- stacks, change sets and rollbacks; of the nesting, only the root's wiring of the data stack's
  outputs into the services' stacks is reproduced (by `local/stack.py`), and the function alarms'
  nested stack, which `local/cloudwatch/alarms.py` follows with its parameters;
- intrinsic functions the templates do not use: the resolver raises rather than guess;
- IAM: roles are not created or enforced locally; tests/policy/ holds every function's AWS calls
  against its role instead;
- the other resources: functions and the event source mapping are read by `local/lambda_runtime/`,
  alarms and the dashboard by `local/cloudwatch/`, the API by `local/apigateway/` from its document;
  the user pools are stood in for by `local/cognito/` (their groups checked against `auth.yaml` by
  the tests); the API's deployment and stage, SNS topics, the budget and the account stack exist only
  in AWS.
"""
