"""`make deploy` and `make destroy`: the build of `deploy/package.py` and its deploy check
(`deploy/checks.py`), then the AWS CLI's own `cloudformation package` (uploads the templates, the
layer and the code) and `cloudformation deploy`.

Nothing here talks to AWS but the `aws` command, so what runs is what a deployer could type by hand;
each command is echoed before it runs. Credentials are checked first, so a machine without them
stops at once with the way out (`DRY_RUN=1` builds and checks everything without AWS).

A deploy survives what a first deploy leaves behind: a root stack in `ROLLBACK_COMPLETE` (a failed
first create, which CloudFormation can only delete) is deleted, after saying so, before deploying
again; a deploy with nothing new is a no-op; an account whose API Gateway already names a logging
role keeps it. The concurrency alarms' threshold is 90 % of the account's own limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.checks import Packaged, findings
from deploy.package import BUILD, build
from deploy.templates import TEMPLATES

ACCOUNT_STACK = "appointments-account"
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")
NO_CREDENTIALS = (
    "No AWS credentials: set AWS_PROFILE (or run `aws configure`, or export AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY), then run make deploy again. To build and check everything without AWS: "
    "make deploy DRY_RUN=1"
)


class DeployError(RuntimeError):
    """What stopped the deployment, said so that the deployer knows what to do."""


@dataclass
class AwsCli:
    """The `aws` command of the virtualenv, with the region (when given) on every call."""

    executable: str = str(Path(sys.executable).parent / "aws")
    region: str | None = None
    echo: bool = True
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, *args: str, capture: bool = True) -> str:
        command = [self.executable, *args, *(["--region", self.region] if self.region else [])]
        self.calls.append(command)
        if self.echo:
            print("+ aws " + " ".join(args), file=sys.stderr, flush=True)
        done = subprocess.run(command, capture_output=capture, text=True)
        if done.returncode != 0:
            raise DeployError(f"aws {args[0]} {args[1]} failed ({done.returncode}): {(done.stderr or '').strip()}")
        return done.stdout or ""


def account(aws: AwsCli) -> str:
    try:
        return str(json.loads(aws("sts", "get-caller-identity", "--output", "json"))["Account"])
    except DeployError as error:
        text = str(error)
        if "credentials" in text.lower() or "could not be found" in text or "ExpiredToken" in text:
            raise DeployError(NO_CREDENTIALS) from error
        if "region" in text.lower():
            raise DeployError("No AWS region: give REGION=… (or set AWS_REGION / a profile's region)") from error
        raise


def stack_outputs(aws: AwsCli, stack: str) -> dict[str, str]:
    described = json.loads(aws("cloudformation", "describe-stacks", "--stack-name", stack, "--output", "json"))
    outputs = described["Stacks"][0].get("Outputs", [])
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs}


def stack_status(aws: AwsCli, stack: str) -> str | None:
    """The stack's status, or None when there is no such stack."""
    try:
        described = json.loads(aws("cloudformation", "describe-stacks", "--stack-name", stack, "--output", "json"))
    except DeployError as error:
        if "does not exist" in str(error):
            return None
        raise
    return str(described["Stacks"][0]["StackStatus"])


def artifacts_bucket(aws: AwsCli) -> str:
    """The account's artifacts bucket, with the account stack (cloudformation/account.yaml) created or updated.

    API Gateway's logging role is one setting per account and region ("you should only have one
    AWS::ApiGateway::Account resource per region per account", its CloudFormation reference): a role
    the account already names, and that this stack did not make, is kept rather than replaced."""
    current = json.loads(aws("apigateway", "get-account", "--output", "json")).get("cloudwatchRoleArn") or ""
    clear_failed_first_deploy(aws, ACCOUNT_STACK)
    keep = current if current and not _made_by_account_stack(aws, current) else ""
    if keep:
        print(f"API Gateway already logs with {keep}: keeping it (the account stack makes no role)", file=sys.stderr)
    aws(
        "cloudformation", "deploy", "--stack-name", ACCOUNT_STACK, "--template-file", str(TEMPLATES / "account.yaml"),
        "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset",
        "--parameter-overrides", f"ExistingApiGatewayLogsRoleArn={keep}", capture=False,
    )  # fmt: skip
    return stack_outputs(aws, ACCOUNT_STACK)["ArtifactsBucketName"]


def deploy_region(aws: AwsCli) -> str:
    """The region the `aws` commands go to: REGION, else the CLI's own choice (its environment
    variables first, as the CLI reads them, then the profile's configuration)."""
    region = aws.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        try:
            region = aws("configure", "get", "region").strip()
        except DeployError:
            region = ""
    if not region:
        raise DeployError("No AWS region: give REGION=… (or set AWS_REGION / a profile's region)")
    return region


def _made_by_account_stack(aws: AwsCli, role_arn: str) -> bool:
    """Whether the account stack made this role: by its output, or by its resource for a stack made
    before that output existed."""
    if stack_status(aws, ACCOUNT_STACK) is None:
        return False
    if stack_outputs(aws, ACCOUNT_STACK).get("ApiGatewayLogsRoleArn") == role_arn:
        return True
    try:
        described = aws(
            "cloudformation", "describe-stack-resource", "--stack-name", ACCOUNT_STACK,
            "--logical-resource-id", "ApiGatewayLogsRole", "--output", "json",
        )  # fmt: skip
    except DeployError:
        return False
    role_name = json.loads(described)["StackResourceDetail"]["PhysicalResourceId"]
    return role_arn.endswith(f":role/{role_name}")


def concurrency_threshold(aws: AwsCli) -> int:
    """90 % of the account's concurrent executions: 1,000 by default, far fewer on a new account."""
    settings = json.loads(aws("lambda", "get-account-settings", "--output", "json"))
    return max(1, int(settings["AccountLimit"]["ConcurrentExecutions"]) * 9 // 10)


def existing_services_monitor(aws: AwsCli, stage: str) -> str:
    """The account's AWS services anomaly monitor, if it has one that this stage did not make: an
    account may have only one (Cost Anomaly Detection FAQ), and AWS makes a default one for many
    accounts; the budget stack subscribes to it rather than failing to make a second. The stage's own
    (`appointments-<stage>-services`) is not "existing": the stack keeps making it."""
    monitors = json.loads(aws("ce", "get-anomaly-monitors", "--output", "json")).get("AnomalyMonitors", [])
    services = [
        m
        for m in monitors
        if m.get("MonitorType") == "DIMENSIONAL"
        and m.get("MonitorDimension") == "SERVICE"
        and m.get("MonitorName") != f"appointments-{stage}-services"
    ]
    return str(services[0]["MonitorArn"]) if services else ""


def clear_failed_first_deploy(aws: AwsCli, stack: str) -> None:
    """A stack whose first create rolled back can only be deleted ("When in this state, only a delete
    operation can be performed", CloudFormation's stack status codes): delete it, saying so."""
    status = stack_status(aws, stack)
    if status == "ROLLBACK_COMPLETE":
        print(
            f"{stack} is in ROLLBACK_COMPLETE: its first deploy failed and rolled back (why: aws cloudformation "
            f"describe-stack-events --stack-name {stack}). Deleting it, then deploying again.",
            file=sys.stderr,
        )
        aws("cloudformation", "delete-stack", "--stack-name", stack)
        aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", stack, capture=False)
    elif status is not None and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        # REVIEW_IN_PROGRESS is a stack whose first change set was never executed: it never finishes
        # by itself, and `cloudformation deploy` creates the stack from it as if it were not there.
        raise DeployError(f"{stack} is {status}: wait for it to finish, then run make deploy again")


def kept_by_a_destroyed_stage(aws: AwsCli, stage: str, account_id: str) -> dict[str, str]:
    """The root stack's parameters that adopt what `make destroy` kept of this stage (its tables, audit
    and backup buckets and user pools, by their names), so that deploying the stage again does not fail
    on them."""
    adopted: dict[str, str] = {}
    table = _kept_table(aws, f"appointments-{stage}")
    if table is not None:
        adopted["ExistingTableStreamArn"] = str(table["LatestStreamArn"])
    if _kept_table(aws, f"appointments-{stage}-audit") is not None:
        adopted["AdoptAuditTable"] = "true"
    region = deploy_region(aws)
    for prefix, parameter in (("appointments-audit", "AdoptAuditBucket"), ("appointments-bak", "AdoptBackupBucket")):
        try:
            aws("s3api", "head-bucket", "--bucket", f"{prefix}-{stage}-{account_id}-{region}")
            adopted[parameter] = "true"
        except DeployError as error:
            if "404" not in str(error) and "Not Found" not in str(error):
                raise
    pools: list[dict[str, Any]] = []
    token: list[str] = []
    while True:  # the CLI requires --max-results here, and then leaves paging to the caller
        page = json.loads(aws("cognito-idp", "list-user-pools", "--max-results", "60", *token, "--output", "json"))
        pools += page["UserPools"]
        if not page.get("NextToken"):
            break
        token = ["--next-token", page["NextToken"]]
    # the customer pool and the staff pool (auth.yaml names them so), each adopted on its own
    for name, parameter in (
        (f"appointments-{stage}", "ExistingUserPoolId"),
        (f"appointments-{stage}.staff", "ExistingStaffUserPoolId"),
    ):
        named = [str(pool["Id"]) for pool in pools if pool["Name"] == name]
        if len(named) > 1:
            raise DeployError(
                f"{len(named)} user pools are named {name} ({', '.join(named)}): give the one to keep "
                f"with PARAMS={parameter}=<id>"
            )
        if named:
            adopted[parameter] = named[0]
    if adopted:
        print(
            f"Stage {stage!r} was destroyed and kept its data; adopting {', '.join(sorted(adopted))}", file=sys.stderr
        )
    return adopted


def _kept_table(aws: AwsCli, name: str) -> dict[str, Any] | None:
    try:
        described: dict[str, Any] = json.loads(
            aws("dynamodb", "describe-table", "--table-name", name, "--output", "json")
        )
    except DeployError as error:
        if "ResourceNotFoundException" not in str(error):
            raise
        return None
    return dict(described["Table"])


def deploy(
    stage: str, aws: AwsCli, architecture: str = "arm64", parameters: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Build, package and deploy one stage; answers the root stack's outputs."""
    who = account(aws)
    print(f"Deploying stage {stage!r} to account {who}{' in ' + aws.region if aws.region else ''}", file=sys.stderr)
    built = build(architecture)
    problems = [
        f"  {rule.name}: {finding} ({rule.source})" for rule, finding in findings(Packaged.read(built.templates))
    ]
    if problems:
        raise DeployError("The deploy check found what AWS would refuse; nothing was deployed:\n" + "\n".join(problems))
    bucket = artifacts_bucket(aws)
    packaged = BUILD / f"packaged-{stage}.yaml"
    aws(
        "cloudformation", "package", "--template-file", str(built.templates / "root.yaml"),
        "--s3-bucket", bucket, "--s3-prefix", f"appointments/{stage}", "--output-template-file", str(packaged),
    )  # fmt: skip
    clear_failed_first_deploy(aws, f"appointments-{stage}")
    first = stack_status(aws, f"appointments-{stage}") in (None, "REVIEW_IN_PROGRESS")
    overrides = {
        "Stage": stage,
        "Architecture": architecture,
        "ConcurrencyAlarmThreshold": str(concurrency_threshold(aws)),
        "ExistingAnomalyMonitorArn": existing_services_monitor(aws, stage),
        **(kept_by_a_destroyed_stage(aws, stage, who) if first else {}),
        **(parameters or {}),
    }
    aws(
        "cloudformation", "deploy", "--stack-name", f"appointments-{stage}", "--template-file", str(packaged),
        "--capabilities", *CAPABILITIES, "--no-fail-on-empty-changeset",
        "--parameter-overrides", *(f"{key}={value}" for key, value in overrides.items()),
        capture=False,
    )  # fmt: skip
    return stack_outputs(aws, f"appointments-{stage}")


def destroy(stage: str, aws: AwsCli) -> None:
    account(aws)
    aws("cloudformation", "delete-stack", "--stack-name", f"appointments-{stage}")
    aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", f"appointments-{stage}", capture=False)
    print(
        f"Stage {stage!r} deleted. Kept on purpose (DeletionPolicy RetainExceptOnCreate): the tables "
        f"appointments-{stage} and appointments-{stage}-audit, its audit bucket and its user pools (customers "
        f"and staff). "
        f"make deploy STAGE={stage} adopts them again; delete them by hand once nothing needs them.",
        file=sys.stderr,
    )


def parse_parameters(pairs: Sequence[str]) -> dict[str, str]:
    """`Key=Value` pairs (make deploy PARAMS="AlarmEmail=me@example.com BudgetLimitUsd=50")."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DeployError(f"parameter {pair!r} is not Key=Value")
        parsed[key] = value
    return parsed


def print_outputs(outputs: Mapping[str, str]) -> None:
    width = max((len(key) for key in outputs), default=0)
    for key, value in sorted(outputs.items()):
        print(f"{key:<{width}}  {value}")
