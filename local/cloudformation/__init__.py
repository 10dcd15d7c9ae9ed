"""Stands in for CloudFormation: the templates of `cloudformation/` resolved and their resources made.

The local stack never describes a table, a bucket, a queue or a function on its own. `resolver.py`
evaluates the intrinsic functions the templates use (`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::Join`,
`Fn::If`, `Fn::Select`, `Fn::Split`, conditions) with the stage's parameters and answers what `Ref`
would locally; `provision.py` turns the data stack's table and bucket and a service's queues into the
API calls CloudFormation would make against the emulator. Templates are read as packaging reads them
(`deploy/templates.py`). So the table the tests and `make run` use is the table `make deploy` creates.

Deliberately not emulated:

- stacks, change sets, rollbacks and nested-stack wiring: the local stack passes the data stack's
  outputs to the services' templates itself;
- intrinsic functions the templates do not use: the resolver raises rather than guess;
- IAM: roles are not created or enforced locally; tests/policy/ holds every function's AWS calls
  against its role instead;
- resources that only AWS runs (the API's deployment, alarms' SNS topics, the budget, Cognito's
  pool): the other local packages read their definitions from the templates directly.
"""
