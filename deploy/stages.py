"""`make deploy` and `make destroy`: the build of `deploy/package.py`, then the AWS CLI's own
`cloudformation package` (uploads the templates, the layer and the code) and `cloudformation deploy`.

Nothing here talks to AWS but the `aws` command, so what runs is what a deployer could type by hand;
each command is echoed before it runs. Credentials are checked first, so a machine without them
stops at once with the way out (`DRY_RUN=1` builds and checks everything without AWS).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


def artifacts_bucket(aws: AwsCli) -> str:
    """The account's artifacts bucket, with the account stack (cloudformation/account.yaml) created or updated."""
    aws(
        "cloudformation", "deploy", "--stack-name", ACCOUNT_STACK, "--template-file", str(TEMPLATES / "account.yaml"),
        "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset", capture=False,
    )  # fmt: skip
    return stack_outputs(aws, ACCOUNT_STACK)["ArtifactsBucketName"]


def deploy(
    stage: str, aws: AwsCli, architecture: str = "arm64", parameters: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Build, package and deploy one stage; answers the root stack's outputs."""
    who = account(aws)
    print(f"Deploying stage {stage!r} to account {who}{' in ' + aws.region if aws.region else ''}", file=sys.stderr)
    built = build(architecture)
    bucket = artifacts_bucket(aws)
    packaged = BUILD / f"packaged-{stage}.yaml"
    aws(
        "cloudformation", "package", "--template-file", str(built.templates / "root.yaml"),
        "--s3-bucket", bucket, "--s3-prefix", f"appointments/{stage}", "--output-template-file", str(packaged),
    )  # fmt: skip
    overrides = {"Stage": stage, "Architecture": architecture, **(parameters or {})}
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
        f"Stage {stage!r} deleted. Kept on purpose (DeletionPolicy Retain): the table appointments-{stage}, "
        f"its audit bucket and its user pool; delete them by hand once nothing needs them.",
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
