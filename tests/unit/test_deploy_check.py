"""The deploy check (`deploy/checks.py`, `make deploy-check`): each AWS deploy-time rule holds on the
packaged templates, and fails on a template that breaks it. Each test names the AWS page of its rule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import checks
from deploy.checks import Packaged
from deploy.package import build


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    return Packaged.read(build(layer=False, out=tmp_path_factory.mktemp("build")).templates)


def broken(packaged: Packaged, change: Callable[[dict[str, Any], dict[str, Any], dict[str, str]], None]) -> Packaged:
    """A copy of the packaged templates with `change(templates, openapi, texts)` applied."""
    templates, openapi, texts = copy.deepcopy(packaged.templates), copy.deepcopy(packaged.openapi), dict(packaged.texts)
    change(templates, openapi, texts)
    return Packaged(templates, texts, openapi)


def test_every_rule_holds_on_the_packaged_templates(packaged: Packaged) -> None:
    assert list(checks.findings(packaged)) == []
    assert len(checks.RULES) == 8 and all(rule.source.startswith("https://") for rule in checks.RULES)


def test_importer_keywords(packaged: Packaged) -> None:
    # api-gateway-known-issues.html: "The example tag is not supported", "The additionalProperties and
    # anyOf fields are not supported in Models", "Customizing … 413 REQUEST_TOO_LARGE isn't currently
    # supported", "For input parameters, only … name, in, required, type, description"
    def change(_: dict[str, Any], openapi: dict[str, Any], __: dict[str, str]) -> None:
        schemas = openapi["components"]["schemas"]
        schemas["Interval"]["additionalProperties"] = False
        schemas["Interval"]["properties"]["start"]["example"] = "09:00"
        schemas["Booking"]["properties"]["notes"]["nullable"] = True
        schemas["Snake_Case"] = {"type": "object"}
        openapi["components"]["parameters"]["ProviderId"]["schema"]["pattern"] = "^prv_"
        openapi["x-amazon-apigateway-gateway-responses"]["REQUEST_TOO_LARGE"] = {"statusCode": 413}
        openapi["paths"]["/bookings/{bookingId}"]["parameters"] = [
            {"name": "bookingId", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^bkg_"}}
        ]
        problem = openapi["components"]["responses"]["Problem"]["content"]["application/problem+json"]
        problem["schema"] = {"type": "object", "oneOf": [{"type": "object"}]}

    found = checks.importer_keywords(broken(packaged, change))
    assert "model Interval: /: additionalProperties is not supported" in found
    assert "model Interval: /start: example is not supported" in found
    assert "model Booking: /notes: nullable is not supported" in found
    assert "model 'Snake_Case': model names can only contain alphanumeric characters" in found
    assert "parameter providerId: schema.pattern ignored by the importer" in found
    assert "gateway response REQUEST_TOO_LARGE: cannot be customized" in found
    assert "/bookings/{bookingId} parameter bookingId: schema.pattern ignored by the importer" in found
    assert "response Problem application/problem+json: /: oneOf is not supported" in found


def test_operation_level_security(packaged: Packaged) -> None:
    # api-gateway-known-issues.html: "API Gateway doesn't use root level security defined in the
    # OpenAPI specification. Hence security needs to be defined at an operation level"
    def change(_: dict[str, Any], openapi: dict[str, Any], __: dict[str, str]) -> None:
        openapi["security"] = [{"CognitoUserPool": []}]
        del openapi["paths"]["/bookings"]["post"]["security"]

    assert checks.operation_security(broken(packaged, change)) == [
        "root-level security is ignored by API Gateway",
        "POST /bookings: no security of its own",
    ]


def test_no_yaml_aliases(packaged: Packaged) -> None:
    # template-formats.html: "AWS CloudFormation doesn't support the following features: … Aliases"
    def change(_: dict[str, Any], openapi: dict[str, Any], texts: dict[str, str]) -> None:
        texts["api/openapi.yaml"] = yaml.safe_dump({"a": (shared := {"x": 1}), "b": shared})

    found = checks.yaml_aliases(broken(packaged, change))
    assert found == ["api/openapi.yaml:1: anchor id001", "api/openapi.yaml:3: alias id001"]


def test_physical_names_within_their_limits(packaged: Packaged) -> None:
    # bucketnamingrules.html: "Bucket names must be between 3 (min) and 63 (max) characters long."
    def change(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        templates["root.yaml"]["Parameters"]["Stage"]["MaxLength"] = 20

    audit, backups = checks.name_lengths(broken(packaged, change))
    assert audit.startswith("data.yaml AuditBucket.BucketName: 67 characters > 63")
    assert backups.startswith("data.yaml BackupBucket.BucketName: 65 characters > 63")

    def unbounded(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        del templates["root.yaml"]["Parameters"]["Stage"]["MaxLength"]

    assert checks.name_lengths(broken(packaged, unbounded)) == [
        "root.yaml Stage: no MaxLength, so no name built from it is bounded"
    ]


def test_retained_resources_are_retain_except_on_create(packaged: Packaged) -> None:
    # aws-attribute-deletionpolicy.html: "If the stack operation that created the resource is rolled
    # back, CloudFormation deletes the resource."
    def change(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        templates["data.yaml"]["Resources"]["Table"]["DeletionPolicy"] = "Retain"

    assert checks.retain_except_on_create(broken(packaged, change)) == ["data.yaml Table: DeletionPolicy Retain"]

    def dropped(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        del templates["auth.yaml"]["Resources"]["AdminsGroup"]["DeletionPolicy"]
        del templates["data.yaml"]["Resources"]["AuditBucket"]["DeletionPolicy"]

    assert checks.retain_except_on_create(broken(packaged, dropped)) == [
        "auth.yaml AdminsGroup: holds data and has no DeletionPolicy (deleted with its stack)",
        "data.yaml AuditBucket: holds data and has no DeletionPolicy (deleted with its stack)",
    ]


def test_alarm_topics_cloudwatch_can_publish_to(packaged: Packaged) -> None:
    # repost.aws/knowledge-center/cloudwatch-configure-alarm-sns: "CloudWatch Alarms does not have
    # authorization to access the SNS topic encryption key" under the AWS managed key
    def managed(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        templates["monitoring.yaml"]["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"

    def ungranted(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        policy = templates["monitoring.yaml"]["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]
        policy["Statement"] = policy["Statement"][:1]

    assert checks.alarm_topics(broken(packaged, managed)) == [
        "monitoring.yaml AlarmTopic: under the AWS managed key alias/aws/sns"
    ]

    def by_attribute(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        ungranted(templates, _, __)
        topic = templates["monitoring.yaml"]["Resources"]["AlarmTopic"]["Properties"]
        topic["KmsMasterKeyId"] = {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}

    def elsewhere(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        templates["monitoring.yaml"]["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"] = "alias/someone"

    assert checks.alarm_topics(broken(packaged, by_attribute)) == [
        "monitoring.yaml AlarmTopic: key AlarmTopicKey does not let CloudWatch decrypt and generate data keys"
    ]
    assert checks.alarm_topics(broken(packaged, elsewhere)) == [
        "monitoring.yaml AlarmTopic: key alias/someone is not a key of this template, so its policy is unchecked"
    ]
    assert checks.alarm_topics(broken(packaged, ungranted)) == [
        "monitoring.yaml AlarmTopic: key AlarmTopicKey does not let CloudWatch decrypt and generate data keys"
    ]


def test_log_levels_keep_metrics_and_sampled_debug_lines(packaged: Packaged) -> None:
    # monitoring-cloudwatchlogs-log-level.html: "If the "level" value field is invalid or missing,
    # Lambda will assign the log output the level INFO"; EMF lines have none
    def change(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        booking = templates["booking.yaml"]
        booking["Parameters"]["LogLevel"]["AllowedValues"] = ["INFO", "WARN"]
        booking["Resources"]["BookingFunction"]["Properties"]["LoggingConfig"]["ApplicationLogLevel"] = {
            "Ref": "LogLevel"
        }

    found = checks.log_levels(broken(packaged, change))
    assert found == [
        "booking.yaml BookingFunction: ApplicationLogLevel INFO with LogLevel INFO and sample rate 0.1 drops "
        "sampled DEBUG lines",
        "booking.yaml BookingFunction: ApplicationLogLevel WARN with LogLevel WARN and sample rate 0 drops "
        "metric (EMF) lines",
        "booking.yaml BookingFunction: ApplicationLogLevel WARN with LogLevel WARN and sample rate 0.1 drops "
        "sampled DEBUG lines",
        # the publisher, the waitlist function and the webhook dispatcher share the parameter: at WARN,
        # they too drop their metrics
        "booking.yaml PublisherFunction: ApplicationLogLevel WARN with LogLevel WARN and sample rate 0 drops "
        "metric (EMF) lines",
        "booking.yaml WaitlistFunction: ApplicationLogLevel WARN with LogLevel WARN and sample rate 0 drops "
        "metric (EMF) lines",
        "booking.yaml WebhookFunction: ApplicationLogLevel WARN with LogLevel WARN and sample rate 0 drops "
        "metric (EMF) lines",
        "booking.yaml NotificationFunction: ApplicationLogLevel WARN with LogLevel WARN and sample rate 0 drops "
        "metric (EMF) lines",
    ]


def test_concurrency_alarms_fire_on_the_accounts_limit(packaged: Packaged) -> None:
    # gettingstarted-limits.html: "New AWS accounts have reduced concurrency and memory quotas"
    def change(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        templates["alarms/function.yaml"]["Resources"]["ConcurrencyAlarm"]["Properties"]["Threshold"] = 900
        del templates["booking.yaml"]["Resources"]["BookingFunctionAlarms"]["Properties"]["Parameters"][
            "ConcurrencyAlarmThreshold"
        ]

    assert checks.concurrency_thresholds(broken(packaged, change)) == [
        "alarms/function.yaml ConcurrencyAlarm: threshold 900 is not the account's",
        "booking.yaml BookingFunctionAlarms: does not pass ConcurrencyAlarmThreshold down",
    ]


def test_make_deploy_check_runs_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deploy.__main__ import main

    assert main(["check"]) == 0
    assert "deploy check: 0 finding(s)" in capsys.readouterr().out


def test_every_alarm_action_is_the_topic_cloudwatch_can_publish_to(packaged: Packaged) -> None:
    # repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger: without a topic policy for
    # cloudwatch.amazonaws.com, "… is not authorized to perform: SNS:Publish"
    def change(templates: dict[str, Any], _: dict[str, Any], __: dict[str, str]) -> None:
        monitoring = templates["monitoring.yaml"]["Resources"]
        del monitoring["AlarmTopicPolicy"]
        monitoring["ApiServerErrorsAlarm"]["Properties"]["AlarmActions"] = ["arn:aws:sns:us-east-1:1:elsewhere"]
        booking = templates["root.yaml"]["Resources"]["Booking"]["Properties"]["Parameters"]
        booking["AlarmTopicArn"] = "arn:aws:sns:us-east-1:1:elsewhere"

    found = checks.alarm_topics(broken(packaged, change))
    assert found == [
        "monitoring.yaml ApiServerErrorsAlarm.AlarmActions: arn:aws:sns:us-east-1:1:elsewhere is not the alarm topic",
        "root.yaml Booking: passes arn:aws:sns:us-east-1:1:elsewhere as AlarmTopicArn",
        "monitoring.yaml AlarmTopic: no topic policy lets cloudwatch.amazonaws.com publish",
    ]
