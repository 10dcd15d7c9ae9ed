"""`make deploy` without AWS: with no credentials it stops at once and says what to do; with an `aws`
that records its calls, the build is packaged and deployed with the capabilities and parameters a
stage needs, and the outputs are printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy import package, stages
from tests.conftest import ROOT

# A stand-in for the `aws` command: it keeps a small world (stacks and their status, the account's
# settings, what a destroyed stage kept) in a JSON file, answers as the AWS CLI does, exit status
# and error text included, and logs every call.
FAKE_AWS = """#!{python}
import json, sys, pathlib
args = sys.argv[1:]
if "--region" in args:
    args = args[: args.index("--region")]
world_path = pathlib.Path({world!r})
world = json.loads(world_path.read_text())
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
def option(name):
    return args[args.index(name) + 1]
def fail(operation, code, message):
    print(f"An error occurred ({{code}}) when calling the {{operation}} operation: {{message}}", file=sys.stderr)
    sys.exit(254)
def save():
    world_path.write_text(json.dumps(world))
stacks = world.setdefault("stacks", {{}})
command = args[:2]
if command == ["sts", "get-caller-identity"]:
    print(json.dumps({{"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/deployer"}}))
elif command == ["cloudformation", "package"]:
    assert pathlib.Path(option("--template-file")).is_file()
    pathlib.Path(option("--output-template-file")).write_text("packaged")
elif command == ["cloudformation", "describe-stacks"]:
    name = option("--stack-name")
    if name not in stacks:
        fail("DescribeStacks", "ValidationError", f"Stack with id {{name}} does not exist")
    stack = stacks[name]
    print(json.dumps({{"Stacks": [{{"StackStatus": stack["status"], "Outputs": [
        {{"OutputKey": k, "OutputValue": v}} for k, v in stack.get("outputs", {{}}).items()]}}]}}))
elif command == ["cloudformation", "deploy"]:
    name = option("--stack-name")
    if stacks.get(name, {{}}).get("status") == "ROLLBACK_COMPLETE":
        fail("CreateChangeSet", "ValidationError",
             f"Stack:{{name}} is in ROLLBACK_COMPLETE state and can not be updated.")
    overrides = args[args.index("--parameter-overrides") + 1:] if "--parameter-overrides" in args else []
    parameters = dict(item.split("=", 1) for item in overrides)
    known = stacks.get(name, {{}})
    if known.get("status") not in (None, "REVIEW_IN_PROGRESS") and known.get("parameters") == parameters:
        if "--no-fail-on-empty-changeset" not in args:
            fail("CreateChangeSet", "ValidationError", "No changes to deploy. Stack " + name + " is up to date")
        print("No changes to deploy. Stack " + name + " is up to date")
    else:
        world.setdefault("executed", []).append(name)
        created = known.get("status") in (None, "REVIEW_IN_PROGRESS")
        stacks[name] = {{"status": "CREATE_COMPLETE" if created else "UPDATE_COMPLETE", "parameters": parameters,
                         "outputs": world["outputs"].get(name, {{}})}}
    save()
elif command == ["cloudformation", "delete-stack"]:
    stacks.pop(option("--stack-name"), None)
    save()
elif command == ["cloudformation", "wait"]:
    pass
elif command == ["apigateway", "get-account"]:
    print(json.dumps({{"cloudwatchRoleArn": world.get("apiGatewayRole", "")}}))
elif command == ["lambda", "get-account-settings"]:
    print(json.dumps({{"AccountLimit": {{"ConcurrentExecutions": world.get("concurrency", 1000)}}}}))
elif command == ["dynamodb", "describe-table"]:
    tables = world.get("kept", {{}}).get("tables", {{}})
    name = option("--table-name")
    if name not in tables:
        fail("DescribeTable", "ResourceNotFoundException", "Requested resource not found")
    stream = {{"LatestStreamArn": tables[name]}} if tables[name] else {{}}  # a table without a stream has none
    print(json.dumps({{"Table": {{"TableName": name, **stream}}}}))
elif command == ["s3api", "head-bucket"]:
    if option("--bucket") not in world.get("kept", {{}}).get("buckets", []):
        fail("HeadBucket", "404", "Not Found")
elif command == ["cognito-idp", "list-user-pools"]:
    pools = world.get("kept", {{}}).get("pools", [])
    start = int(option("--next-token")) if "--next-token" in args else 0
    size = int(option("--max-results"))
    page = {{"UserPools": pools[start:start + size]}}
    if start + size < len(pools):
        page["NextToken"] = str(start + size)
    print(json.dumps(page))
elif command == ["cloudformation", "describe-stack-resource"]:
    role = world.get("accountStackRole")
    if not role:
        fail("DescribeStackResource", "ValidationError", "Resource ApiGatewayLogsRole does not exist for stack")
    print(json.dumps({{"StackResourceDetail": {{"PhysicalResourceId": role}}}}))
elif command == ["ce", "get-anomaly-monitors"]:
    print(json.dumps({{"AnomalyMonitors": world.get("monitors", [])}}))
elif command == ["configure", "get"]:
    if not world.get("profileRegion"):
        sys.exit(1)  # what the CLI does for a setting it does not have: no output, status 1
    print(world["profileRegion"])
else:
    fail("Fake", "Unknown", "the fake aws does not know " + " ".join(args))
"""
OUTPUTS = {
    "appointments-account": {"ArtifactsBucketName": "appointments-artifacts-123456789012-eu-west-1"},
    "appointments-qa": {"ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/qa", "UserPoolId": "eu-x"},
}


@dataclass
class FakeAws:
    """The fake `aws`, its world and its call log."""

    aws: stages.AwsCli
    world: Path
    log: Path

    def set(self, **values: Any) -> None:
        self.world.write_text(json.dumps(json.loads(self.world.read_text()) | values))

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.world.read_text()))

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def forget_calls(self) -> None:
        self.log.unlink(missing_ok=True)

    def deploys_of(self, stack: str) -> list[dict[str, str]]:
        return [
            dict(item.split("=", 1) for item in call[call.index("--parameter-overrides") + 1 :])
            for call in self.calls()
            if call[:2] == ["cloudformation", "deploy"] and call[call.index("--stack-name") + 1] == stack
        ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> package.Built:
    """The build, made once for the module's deploys (about 3 s each time), where no test writes. The
    dependency layer is pip's download for another platform: the deploy flow is what is tested here."""
    return package.build("arm64", layer=False, out=tmp_path_factory.mktemp("build"))


@pytest.fixture
def fake_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: package.Built) -> FakeAws:
    world, log, fake = tmp_path / "world.json", tmp_path / "calls.jsonl", tmp_path / "aws"
    world.write_text(json.dumps({"outputs": OUTPUTS, "stacks": {}}))
    fake.write_text(FAKE_AWS.format(python=sys.executable, log=str(log), world=str(world)))
    fake.chmod(0o755)

    def build(architecture: str) -> package.Built:
        assert architecture in package.PLATFORMS, architecture  # what package.build refuses
        return built

    monkeypatch.setattr(stages, "build", build)
    return FakeAws(stages.AwsCli(executable=str(fake), region="eu-west-1", echo=False), world, log)


def test_without_credentials_make_deploy_stops_at_once_with_the_way_out(tmp_path: Path) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key == "AWS_EC2_METADATA_DISABLED"
    }
    environment |= {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "deploy", "STAGE=qa", "REGION=eu-west-1"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "No AWS credentials" in done.stderr and "make deploy DRY_RUN=1" in done.stderr, done.stderr


def test_a_stage_is_built_checked_packaged_and_deployed_with_its_parameters(
    fake_aws: FakeAws, built: package.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = stages.deploy("qa", fake_aws.aws, "x86_64", stages.parse_parameters(["AlarmEmail=oncall@example.com"]))
    stages.print_outputs(outputs)

    calls = fake_aws.calls()
    assert [call[:2] for call in calls] == [
        ["sts", "get-caller-identity"],
        ["apigateway", "get-account"],  # does the account already name a logging role?
        ["cloudformation", "describe-stacks"],  # the account stack: not there yet
        ["cloudformation", "deploy"],  # the account stack: artifacts bucket, API Gateway's logging role
        ["cloudformation", "describe-stacks"],
        ["cloudformation", "package"],
        ["cloudformation", "describe-stacks"],  # the stage: no failed first deploy in the way
        ["cloudformation", "describe-stacks"],  # the stage: a first deploy, so look for what a destroy kept
        ["lambda", "get-account-settings"],
        ["ce", "get-anomaly-monitors"],
        ["dynamodb", "describe-table"],  # the table
        ["dynamodb", "describe-table"],  # the audit table
        ["s3api", "head-bucket"],  # the audit bucket
        ["s3api", "head-bucket"],  # the backup bucket
        ["cognito-idp", "list-user-pools"],
        ["cloudformation", "deploy"],
        ["cloudformation", "describe-stacks"],
    ]
    artifacts, packaged, deployed = calls[3], calls[5], calls[15]
    assert artifacts[artifacts.index("--template-file") + 1].endswith("cloudformation/account.yaml")
    assert artifacts[artifacts.index("--stack-name") + 1] == "appointments-account" and "CAPABILITY_IAM" in artifacts
    assert fake_aws.deploys_of("appointments-account") == [{"ExistingApiGatewayLogsRoleArn": ""}]
    assert packaged[packaged.index("--template-file") + 1] == str(built.templates / "root.yaml")
    assert packaged[packaged.index("--s3-bucket") + 1] == "appointments-artifacts-123456789012-eu-west-1"
    assert deployed[deployed.index("--stack-name") + 1] == "appointments-qa"
    capabilities = deployed[deployed.index("--capabilities") + 1 : deployed.index("--capabilities") + 3]
    assert capabilities == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    assert "--no-fail-on-empty-changeset" in deployed
    assert fake_aws.deploys_of("appointments-qa") == [
        {
            "Stage": "qa",
            "Architecture": "x86_64",
            "ConcurrencyAlarmThreshold": "900",  # 90 % of the account's 1,000
            "ExistingAnomalyMonitorArn": "",  # the account has no services monitor yet: the stack makes one
            "AlarmEmail": "oncall@example.com",
        }
    ]
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert printed == [["ApiUrl", "https://abc.execute-api.eu-west-1.amazonaws.com/qa"], ["UserPoolId", "eu-x"]]


def test_a_second_deploy_of_the_same_stage_changes_nothing(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    parameters = stages.parse_parameters(["AlarmEmail=oncall@example.com"])  # the budget's monitor included
    stages.deploy("qa", fake_aws.aws, "arm64", parameters)
    own = {"MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/qa", "MonitorName": "appointments-qa-services",
           "MonitorType": "DIMENSIONAL", "MonitorDimension": "SERVICE"}  # fmt: skip
    fake_aws.set(monitors=[own])  # what the first deploy's budget stack made
    assert fake_aws.state()["executed"] == ["appointments-account", "appointments-qa"]
    fake_aws.forget_calls()
    stages.deploy("qa", fake_aws.aws, "arm64", parameters)
    assert fake_aws.state()["executed"] == ["appointments-account", "appointments-qa"]  # no change set ran again
    (again,) = fake_aws.deploys_of("appointments-qa")
    assert again["ExistingAnomalyMonitorArn"] == ""  # its own monitor is not someone else's: it stays made
    assert ["dynamodb", "describe-table"] not in [call[:2] for call in fake_aws.calls()]  # not a first deploy
    assert ["cloudformation", "delete-stack"] not in [call[:2] for call in fake_aws.calls()]


def test_a_failed_first_deploy_is_deleted_with_a_word_then_deployed_again(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a first deploy that rolled back (CloudFormation allows only its deletion)
    fake_aws.set(stacks={"appointments-qa": {"status": "ROLLBACK_COMPLETE"}})
    stages.deploy("qa", fake_aws.aws, "arm64")
    calls = [call[:3] for call in fake_aws.calls()]
    deleted = calls.index(["cloudformation", "delete-stack", "--stack-name"])
    assert calls[deleted + 1] == ["cloudformation", "wait", "stack-delete-complete"]
    assert calls.index(["cloudformation", "deploy", "--stack-name"]) < deleted  # the account stack first
    assert calls[-2][:2] == ["cloudformation", "deploy"] and fake_aws.state()["stacks"]["appointments-qa"][
        "status"
    ] == ("CREATE_COMPLETE")
    assert "appointments-qa is in ROLLBACK_COMPLETE" in capsys.readouterr().err


def test_destroy_then_deploy_adopts_the_kept_tables_bucket_and_user_pools(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    stages.deploy("qa", fake_aws.aws, "arm64")
    stages.destroy("qa", fake_aws.aws)
    assert "make deploy STAGE=qa adopts them again" in capsys.readouterr().err
    # What DeletionPolicy kept, under its names
    stream = "arn:aws:dynamodb:eu-west-1:123456789012:table/appointments-qa/stream/2026-11-29T00:00:00.000"
    others = [{"Id": f"eu-west-1_{n}", "Name": f"other-{n}"} for n in range(70)]
    pools = [
        *others,
        {"Id": "eu-west-1_kept", "Name": "appointments-qa"},  # on the second page
        {"Id": "eu-west-1_staff", "Name": "appointments-qa.staff"},
        {"Id": "eu-west-1_decoy", "Name": "appointments-qa-staff"},  # stage qa-staff's customer pool
    ]
    tables = {"appointments-qa": stream, "appointments-qa-audit": None}
    buckets = ["appointments-audit-qa-123456789012-eu-west-1", "appointments-bak-qa-123456789012-eu-west-1"]
    kept = {"tables": tables, "buckets": buckets}
    fake_aws.set(kept=kept | {"pools": pools})
    fake_aws.forget_calls()
    stages.deploy("qa", fake_aws.aws, "arm64")
    (parameters,) = fake_aws.deploys_of("appointments-qa")
    adopting = (
        "ExistingTableStreamArn",
        "AdoptAuditTable",
        "AdoptAuditBucket",
        "AdoptBackupBucket",
        "ExistingUserPoolId",
        "ExistingStaffUserPoolId",
    )
    assert {key: parameters[key] for key in adopting} == {
        "ExistingTableStreamArn": stream,
        "AdoptAuditTable": "true",
        "AdoptAuditBucket": "true",
        "AdoptBackupBucket": "true",
        "ExistingUserPoolId": "eu-west-1_kept",
        "ExistingStaffUserPoolId": "eu-west-1_staff",
    }
    assert (
        "adopting AdoptAuditBucket, AdoptAuditTable, AdoptBackupBucket, ExistingStaffUserPoolId, "
        "ExistingTableStreamArn, ExistingUserPoolId" in capsys.readouterr().err
    )


def test_a_stage_kept_before_the_staff_pool_adopts_its_customer_pool_and_makes_a_staff_pool(fake_aws: FakeAws) -> None:
    fake_aws.set(kept={"pools": [{"Id": "eu-west-1_old", "Name": "appointments-qa"}]})
    stages.deploy("qa", fake_aws.aws, "arm64")
    (parameters,) = fake_aws.deploys_of("appointments-qa")
    assert parameters["ExistingUserPoolId"] == "eu-west-1_old" and "ExistingStaffUserPoolId" not in parameters


def test_two_kept_staff_pools_of_a_stage_are_named_and_nothing_is_deployed(fake_aws: FakeAws) -> None:
    twins = [{"Id": f"eu-west-1_s{n}", "Name": "appointments-qa.staff"} for n in range(2)]
    fake_aws.set(kept={"pools": twins})
    with pytest.raises(stages.DeployError, match=r"PARAMS=ExistingStaffUserPoolId=<id>"):
        stages.deploy("qa", fake_aws.aws, "arm64")
    assert fake_aws.deploys_of("appointments-qa") == []


def test_what_the_account_already_has_is_kept_and_a_small_account_alarms_on_its_own_limit(
    fake_aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = "arn:aws:iam::123456789012:role/someone-elses-apigateway-logs"
    monitor = "arn:aws:ce::123456789012:anomalymonitor/default-services"
    services = {"MonitorArn": monitor, "MonitorType": "DIMENSIONAL", "MonitorDimension": "SERVICE"}
    fake_aws.set(apiGatewayRole=theirs, concurrency=10, monitors=[services])
    stages.deploy("qa", fake_aws.aws, "arm64")
    assert fake_aws.deploys_of("appointments-account") == [{"ExistingApiGatewayLogsRoleArn": theirs}]
    assert fake_aws.deploys_of("appointments-qa")[0]["ConcurrencyAlarmThreshold"] == "9"
    assert fake_aws.deploys_of("appointments-qa")[0]["ExistingAnomalyMonitorArn"] == monitor  # one per account
    assert f"API Gateway already logs with {theirs}: keeping it" in capsys.readouterr().err
    # once the account stack made the role, it is its own, and kept being made
    ours = "arn:aws:iam::123456789012:role/appointments-account-ApiGatewayLogsRole"
    fake_aws.set(apiGatewayRole=ours, outputs=OUTPUTS | {"appointments-account": {
        **OUTPUTS["appointments-account"], "ApiGatewayLogsRoleArn": ours}})  # fmt: skip
    stages.deploy("qa", fake_aws.aws, "arm64")  # the account stack now reports the role as its own output
    stages.deploy("qa", fake_aws.aws, "arm64")
    assert fake_aws.deploys_of("appointments-account")[-1] == {"ExistingApiGatewayLogsRoleArn": ""}


def test_a_template_the_deploy_check_refuses_is_never_deployed(
    fake_aws: FakeAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken_build(architecture: str) -> package.Built:
        built = package.build(architecture, layer=False, out=tmp_path / "build")  # not the repository's .build/
        data = built.templates / "data.yaml"
        data.write_text(data.read_text().replace("DeletionPolicy: RetainExceptOnCreate", "DeletionPolicy: Retain"))
        return built

    monkeypatch.setattr(stages, "build", broken_build)
    with pytest.raises(stages.DeployError, match=r"RetainExceptOnCreate: data\.yaml Table: DeletionPolicy Retain"):
        stages.deploy("qa", fake_aws.aws, "arm64")
    assert [call[:2] for call in fake_aws.calls()] == [["sts", "get-caller-identity"]]


def test_parameters_must_be_key_value() -> None:
    with pytest.raises(stages.DeployError, match="'AlarmEmail' is not Key=Value"):
        stages.parse_parameters(["AlarmEmail"])


def test_a_first_change_set_never_executed_is_deployed_over_and_the_region_comes_from_the_environment(
    fake_aws: FakeAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # REVIEW_IN_PROGRESS never ends by itself; `cloudformation deploy` creates the stack from it
    fake_aws.set(stacks={"appointments-qa": {"status": "REVIEW_IN_PROGRESS"}})
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    aws = stages.AwsCli(executable=fake_aws.aws.executable, region=None, echo=False)  # no REGION given
    stages.deploy("qa", aws, "arm64")
    assert fake_aws.state()["stacks"]["appointments-qa"]["status"] == "CREATE_COMPLETE"
    heads = [call for call in fake_aws.calls() if call[:2] == ["s3api", "head-bucket"]]
    assert heads[0][heads[0].index("--bucket") + 1] == "appointments-audit-qa-123456789012-ap-southeast-2"
    # and with no region anywhere, the deploy says so instead of guessing
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    fake_aws.set(stacks={})
    with pytest.raises(stages.DeployError, match="No AWS region"):
        stages.deploy("qa", aws, "arm64")


def test_an_account_stack_made_before_its_role_output_keeps_its_own_role(fake_aws: FakeAws) -> None:
    ours = "arn:aws:iam::123456789012:role/appointments-account-ApiGatewayLogsRole-AB12"
    fake_aws.set(
        apiGatewayRole=ours,
        accountStackRole="appointments-account-ApiGatewayLogsRole-AB12",
        stacks={"appointments-account": {"status": "CREATE_COMPLETE", "parameters": {}, "outputs": {}}},
    )
    stages.deploy("qa", fake_aws.aws, "arm64")
    assert fake_aws.deploys_of("appointments-account") == [{"ExistingApiGatewayLogsRoleArn": ""}]  # still made here
