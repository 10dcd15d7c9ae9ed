"""`make deploy` without AWS: with no credentials it stops at once and says what to do; with an `aws`
that records its calls, the build is packaged and deployed with the capabilities and parameters a
stage needs, and the outputs are printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import package, stages
from tests.conftest import ROOT

FAKE_AWS = """#!{python}
import json, sys, pathlib
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
def option(name):
    return args[args.index(name) + 1]
if args[:2] == ["sts", "get-caller-identity"]:
    print(json.dumps({{"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/deployer"}}))
elif args[:2] == ["cloudformation", "package"]:
    assert pathlib.Path(option("--template-file")).is_file()
    pathlib.Path(option("--output-template-file")).write_text("packaged")
elif args[:2] == ["cloudformation", "describe-stacks"]:
    outputs = {{
        "appointments-account": {{"ArtifactsBucketName": "appointments-artifacts-123456789012-eu-west-1"}},
        "appointments-qa": {{"ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/qa", "UserPoolId": "eu-x"}},
    }}
    print(json.dumps({{"Stacks": [{{"Outputs": [{{"OutputKey": k, "OutputValue": v}}
                                               for k, v in outputs[option("--stack-name")].items()]}}]}}))
"""


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


def test_a_stage_is_built_packaged_and_deployed_with_its_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "aws"
    fake.write_text(FAKE_AWS.format(python=sys.executable, log=str(log)))
    fake.chmod(0o755)
    # the dependency layer is pip's download for another platform: the deploy flow is what is tested here
    monkeypatch.setattr(stages, "build", lambda architecture: package.build(architecture, layer=False))

    aws = stages.AwsCli(executable=str(fake), region="eu-west-1", echo=False)
    outputs = stages.deploy("qa", aws, "x86_64", stages.parse_parameters(["AlarmEmail=oncall@example.com"]))
    stages.print_outputs(outputs)

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [call[:2] for call in calls] == [
        ["sts", "get-caller-identity"],
        ["cloudformation", "deploy"],  # the account stack: artifacts bucket, API Gateway's logging role
        ["cloudformation", "describe-stacks"],
        ["cloudformation", "package"],
        ["cloudformation", "deploy"],
        ["cloudformation", "describe-stacks"],
    ]
    assert all(call[-2:] == ["--region", "eu-west-1"] for call in calls)
    artifacts, packaged, deployed = calls[1], calls[3], calls[4]
    assert artifacts[artifacts.index("--template-file") + 1].endswith("cloudformation/account.yaml")
    assert artifacts[artifacts.index("--stack-name") + 1] == "appointments-account" and "CAPABILITY_IAM" in artifacts
    assert packaged[packaged.index("--template-file") + 1] == str(package.BUILD / "cloudformation" / "root.yaml")
    assert packaged[packaged.index("--s3-bucket") + 1] == "appointments-artifacts-123456789012-eu-west-1"
    assert deployed[deployed.index("--stack-name") + 1] == "appointments-qa"
    capabilities = deployed[deployed.index("--capabilities") + 1 : deployed.index("--capabilities") + 3]
    assert capabilities == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    overrides = deployed[deployed.index("--parameter-overrides") + 1 : -2]
    assert overrides == ["Stage=qa", "Architecture=x86_64", "AlarmEmail=oncall@example.com"]
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert printed == [["ApiUrl", "https://abc.execute-api.eu-west-1.amazonaws.com/qa"], ["UserPoolId", "eu-x"]]


def test_parameters_must_be_key_value() -> None:
    with pytest.raises(stages.DeployError, match="'AlarmEmail' is not Key=Value"):
        stages.parse_parameters(["AlarmEmail"])
