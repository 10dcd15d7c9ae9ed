"""What ships to AWS and how: the build under `.build/` and `make deploy` / `make destroy`.

- `templates`: the CloudFormation templates read (short-form tags) and rendered (dashboard bodies
  in place), for packaging, the local stack and the tests alike;
- `openapi`: the API document API Gateway imports, and its public view;
- `package`: the build `aws cloudformation package` reads (layer, per-function code, templates);
- `stages`: deploy and destroy a stage with the AWS CLI.

Layering: `deploy/` may use `services/` (it ships them) but nothing of `local/`, `loadtests/` or
`tests/`; `local/` may use `deploy/` (tests/unit/test_layering.py holds this).
"""
