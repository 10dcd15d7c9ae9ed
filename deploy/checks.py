"""The deploy check: AWS's deploy-time rules, applied to the packaged templates before anything is sent.

Nobody can try a first deploy from here, and the local stack reads the templates more kindly than
AWS does, so each rule that once would have rolled a first deploy back, or deployed something that
does not work, is written down as a function of the packaged templates (`.build/cloudformation/`),
with the AWS page that states it. `make deploy-check` runs them (tests/unit/test_deploy_check.py
shows each failing on a template that breaks it), `make test` includes them, and `make deploy`
refuses to start while any finds something.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from deploy.intrinsics import Resolver, UnsupportedIntrinsicError
from deploy.openapi import NOT_CUSTOMIZABLE, PARAMETER_ATTRIBUTES, UNSUPPORTED_FORMATS, UNSUPPORTED_IN_MODELS
from deploy.templates import SafeLoader, load_template, resources_of_type

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# The longest names a real deployment gives: a 14-character region (ap-southeast-2, ap-northeast-3,
# …) and a 12-digit account.
LONGEST_REGION = "ap-southeast-2"
ACCOUNT = "123456789012"
# Physical-name limits, from each service's API reference (CreateBucket, CreateTable, …).
NAME_LIMITS: dict[tuple[str, str], int] = {
    ("AWS::S3::Bucket", "BucketName"): 63,
    ("AWS::DynamoDB::Table", "TableName"): 255,
    ("AWS::Lambda::Function", "FunctionName"): 64,
    ("AWS::IAM::Role", "RoleName"): 64,
    ("AWS::SQS::Queue", "QueueName"): 80,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255,
    ("AWS::CloudWatch::CompositeAlarm", "AlarmName"): 255,
    ("AWS::SNS::Topic", "TopicName"): 256,
    ("AWS::Cognito::UserPool", "UserPoolName"): 128,
    ("AWS::Cognito::UserPoolDomain", "Domain"): 63,
    ("AWS::Budgets::Budget", "BudgetName"): 100,
    ("AWS::CloudFormation::Stack", "StackName"): 128,
    ("AWS::Events::EventBus", "Name"): 256,
    ("AWS::Events::Rule", "Name"): 64,
    ("AWS::Scheduler::Schedule", "Name"): 64,
}
_VERBOSITY = ["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"]  # Lambda's application levels


@dataclass(frozen=True)
class Packaged:
    """The packaged templates, parsed, and their text (for what parsing hides, such as aliases)."""

    templates: dict[str, dict[str, Any]]
    texts: dict[str, str]
    openapi: dict[str, Any]

    @classmethod
    def read(cls, directory: Path) -> Packaged:
        paths = sorted([*directory.glob("*.yaml"), *directory.glob("alarms/*.yaml")])
        templates = {str(path.relative_to(directory)): load_template(path) for path in paths}
        texts = {str(path.relative_to(directory)): path.read_text(encoding="utf-8") for path in paths}
        document_path = directory / "api" / "openapi.yaml"
        texts["api/openapi.yaml"] = document_path.read_text(encoding="utf-8")
        return cls(templates, texts, yaml.load(texts["api/openapi.yaml"], Loader=SafeLoader))


@dataclass(frozen=True)
class Rule:
    name: str
    source: str  # the AWS page that states the rule
    check: Callable[[Packaged], list[str]]  # what breaks it, one line each


def importer_keywords(packaged: Packaged) -> list[str]:
    """What API Gateway's importer does not support: model keywords and formats, parameter attributes
    beyond name, in, required, type and description, model names that are not alphanumeric, and the
    gateway responses that cannot be customized."""
    document = packaged.openapi
    found: list[str] = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if not re.fullmatch(r"[A-Za-z0-9]+", name):
            found.append(f"model {name!r}: model names can only contain alphanumeric characters")
        found += [f"model {name}: {problem}" for problem in _schema_problems(schema)]
    for where, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            found += [f"{where} parameter {parameter.get('name')}: {p}" for p in _parameter_problems(parameter)]
        media = [*operation.get("requestBody", {}).get("content", {}).items()]
        media += [
            item for response in operation.get("responses", {}).values() for item in response.get("content", {}).items()
        ]
        for content_type, content in media:
            found += [f"{where} {content_type}: {problem}" for problem in _schema_problems(content.get("schema", {}))]
    for shared in document.get("components", {}).get("parameters", {}).values():
        found += [f"parameter {shared.get('name')}: {problem}" for problem in _parameter_problems(shared)]
    for path, item in document.get("paths", {}).items():
        for parameter in item.get("parameters", []):
            found += [f"{path} parameter {parameter.get('name')}: {p}" for p in _parameter_problems(parameter)]
    for name, response in document.get("components", {}).get("responses", {}).items():
        for content_type, content in response.get("content", {}).items():
            schema = content.get("schema", {})
            found += [f"response {name} {content_type}: {problem}" for problem in _schema_problems(schema)]
    responses = document.get("x-amazon-apigateway-gateway-responses", {})
    found += [f"gateway response {kind}: cannot be customized" for kind in responses if kind in NOT_CUSTOMIZABLE]
    return found


def operation_security(packaged: Packaged) -> list[str]:
    """Security stated on every operation: API Gateway ignores a root-level `security`, so an operation
    without its own has no authorizer at all."""
    document = packaged.openapi
    found = ["root-level security is ignored by API Gateway"] if "security" in document else []
    return found + [f"{where}: no security of its own" for where, op in _operations(document) if "security" not in op]


def yaml_aliases(packaged: Packaged) -> list[str]:
    """No YAML anchors or aliases in what CloudFormation reads."""
    found = []
    for name, text in packaged.texts.items():
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            anchor = getattr(event, "anchor", None)
            if isinstance(event, yaml.AliasEvent) or anchor:
                kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
                line = event.start_mark.line + 1 if event.start_mark else 0
                found.append(f"{name}:{line}: {kind} {anchor}")
    return found


def name_lengths(packaged: Packaged) -> list[str]:
    """Every physical name within its service's limit, for the longest stage the root stack allows,
    in the longest region name, with a 12-digit account."""
    spec = packaged.templates["root.yaml"]["Parameters"]["Stage"]
    if "MaxLength" not in spec:
        return ["root.yaml Stage: no MaxLength, so no name built from it is bounded"]
    stage = "s" * int(spec["MaxLength"])
    found = []
    for name, template in packaged.templates.items():
        resolver = Resolver(
            template, _undefaulted(template) | {"Stage": stage}, region=LONGEST_REGION, account_id=ACCOUNT
        )
        for logical_id, resource in template.get("Resources", {}).items():
            for (kind, field), limit in NAME_LIMITS.items():
                if resource["Type"] != kind or field not in resource.get("Properties", {}):
                    continue
                try:
                    value = str(resolver.resolve(resource["Properties"][field]))
                except (UnsupportedIntrinsicError, KeyError, ValueError):
                    continue  # a name made elsewhere (an output, an attribute) is checked where it is made
                if len(value) > limit:
                    found.append(f"{name} {logical_id}.{field}: {len(value)} characters > {limit} ({value})")
    return found


# What holds the stage's data, kept when its stack is deleted: the table, the audit archive (the
# object-locked bucket), the user pool and its groups.
_KEPT = {"AWS::DynamoDB::Table", "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolGroup"}


def retain_except_on_create(packaged: Packaged) -> list[str]:
    """Retained resources are `RetainExceptOnCreate`: a failed first create otherwise leaves a table or
    a bucket behind whose name blocks every retry. And what holds data is retained at all."""
    found = []
    for name, template in packaged.templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            policy = resource.get("DeletionPolicy")
            if policy == "Retain":
                found.append(f"{name} {logical_id}: DeletionPolicy Retain")
            holds_data = resource["Type"] in _KEPT or (
                resource["Type"] == "AWS::S3::Bucket" and resource.get("Properties", {}).get("ObjectLockEnabled")
            )
            if holds_data and policy is None:
                found.append(f"{name} {logical_id}: holds data and has no DeletionPolicy (deleted with its stack)")
    return found


def alarm_topics(packaged: Packaged) -> list[str]:
    """Alarms that reach people: every alarm action is a topic CloudWatch can publish to. Not under an
    AWS managed key, under a customer managed key only if its policy lets cloudwatch.amazonaws.com
    decrypt and generate data keys, with a topic policy that lets it publish; and every action names
    that topic, in its own template or through the `AlarmTopicArn` the root takes from the monitoring
    stack."""
    found = _alarm_actions(packaged)
    for name, template in packaged.templates.items():
        keys = resources_of_type(template, "AWS::KMS::Key")
        for logical_id, topic in resources_of_type(template, "AWS::SNS::Topic").items():
            key = topic["Properties"].get("KmsMasterKeyId")
            key_id = _key_id(key) if isinstance(key, dict) else None
            if key is None:
                continue  # unencrypted: CloudWatch publishes
            if isinstance(key, str) and key.startswith("alias/aws/"):
                found.append(f"{name} {logical_id}: under the AWS managed key {key}")
            elif key_id is None or key_id not in keys:
                found.append(
                    f"{name} {logical_id}: key {key} is not a key of this template, so its policy is unchecked"
                )
            else:
                statements = keys[key_id]["Properties"]["KeyPolicy"]["Statement"]
                granted = {
                    action
                    for statement in statements
                    if statement.get("Effect") == "Allow"
                    and "cloudwatch.amazonaws.com" in _as_list(statement.get("Principal", {}).get("Service"))
                    for action in _as_list(statement.get("Action"))
                }
                if not _allows(template, logical_id, "sns:Publish"):
                    found.append(f"{name} {logical_id}: no topic policy lets cloudwatch.amazonaws.com publish")
                if not {"kms:Decrypt", "kms:GenerateDataKey*"} <= granted:
                    found.append(
                        f"{name} {logical_id}: key {key_id} does not let CloudWatch decrypt and generate data keys"
                    )
    return found


def _allows(template: dict[str, Any], topic: str, action: str) -> bool:
    """Whether a topic policy of the template grants CloudWatch `action` on `topic`."""
    return any(
        {"Ref": topic} in _as_list(policy["Properties"].get("Topics"))
        and statement.get("Effect") == "Allow"
        and "cloudwatch.amazonaws.com" in _as_list(statement.get("Principal", {}).get("Service"))
        and action in _as_list(statement.get("Action"))
        for policy in resources_of_type(template, "AWS::SNS::TopicPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def _alarm_actions(packaged: Packaged) -> list[str]:
    """Every alarm action a topic of its template or the `AlarmTopicArn` parameter, which every stack
    passes on unchanged from the monitoring stack's `AlarmTopicArn`, its topic."""
    found = []
    from_monitoring = {"Fn::GetAtt": ["Monitoring", "Outputs.AlarmTopicArn"]}
    monitoring = packaged.templates.get("monitoring.yaml", {})
    if monitoring.get("Outputs", {}).get("AlarmTopicArn", {}).get("Value") != {"Ref": "AlarmTopic"}:
        found.append("monitoring.yaml: the AlarmTopicArn output is not its AlarmTopic")
    for name, template in packaged.templates.items():
        topics = resources_of_type(template, "AWS::SNS::Topic")
        kinds = ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
        alarms = {k: v for kind in kinds for k, v in resources_of_type(template, kind).items()}
        for logical_id, alarm in alarms.items():
            for field in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                for action in _actions(alarm["Properties"].get(field)):
                    if action not in [{"Ref": topic} for topic in topics] and action != {"Ref": "AlarmTopicArn"}:
                        found.append(f"{name} {logical_id}.{field}: {action} is not the alarm topic")
        for logical_id, stack in resources_of_type(template, "AWS::CloudFormation::Stack").items():
            passed = stack["Properties"].get("Parameters", {}).get("AlarmTopicArn")
            if passed is not None and passed not in ({"Ref": "AlarmTopicArn"}, from_monitoring):
                found.append(f"{name} {logical_id}: passes {passed} as AlarmTopicArn")
    return found


def _actions(value: Any) -> list[Any]:
    """The actions a property names, through `Fn::If` branches (`AWS::NoValue` names none)."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [action for branch in value["Fn::If"][1:] for action in _actions(branch)]
    if value == {"Ref": "AWS::NoValue"} or value is None:
        return []
    return [action for item in _as_list(value) for action in _actions(item)] if isinstance(value, list) else [value]


def log_levels(packaged: Packaged) -> list[str]:
    """Lambda's log-level filter keeps what Powertools writes: at least INFO, which is how Lambda reads
    the EMF lines that carry every custom metric (they have no level), and DEBUG whenever an
    invocation may be sampled to DEBUG."""
    found = []
    for name, template in packaged.templates.items():
        parameters = template.get("Parameters", {})
        levels = parameters.get("LogLevel", {}).get("AllowedValues", ["INFO"])
        rates = ["0", "0.1"] if "LogDebugSampleRate" in parameters else ["0"]
        for logical_id, function in resources_of_type(template, "AWS::Lambda::Function").items():
            config = function["Properties"].get("LoggingConfig", {})
            if config.get("LogFormat") != "JSON":
                continue  # no filtering without the JSON format
            for level, rate in product(levels, rates):
                given = {"LogLevel": level, "LogDebugSampleRate": rate}
                values = {k: v for k, v in given.items() if k in parameters} | _undefaulted(template)
                resolver = Resolver(template, values, region=LONGEST_REGION, account_id=ACCOUNT)
                filtered = str(resolver.resolve(config.get("ApplicationLogLevel", "INFO")))
                needed = "DEBUG" if rate != "0" else "INFO"
                if _VERBOSITY.index(filtered) < _VERBOSITY.index(needed):
                    found.append(
                        f"{name} {logical_id}: ApplicationLogLevel {filtered} with LogLevel {level} and sample rate "
                        f"{rate} drops {'sampled DEBUG lines' if needed == 'DEBUG' else 'metric (EMF) lines'}"
                    )
    return found


def concurrency_thresholds(packaged: Packaged) -> list[str]:
    """An alarm on a function's concurrency fires below the account's real limit (1,000 by default, as
    low as 10 on a new account): its threshold is the root's ConcurrencyAlarmThreshold, which `make
    deploy` sets from the account's limit, passed down unchanged."""
    found = []
    threshold = {"Ref": "ConcurrencyAlarmThreshold"}
    if "ConcurrencyAlarmThreshold" not in packaged.templates["root.yaml"].get("Parameters", {}):
        found.append("root.yaml: no ConcurrencyAlarmThreshold parameter for make deploy to set")
    for name, template in packaged.templates.items():
        for logical_id, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
            properties = alarm["Properties"]
            concurrency = properties.get("Namespace") == "AWS/Lambda" and "Concurrent" in str(
                properties.get("MetricName")
            )
            if concurrency and properties.get("Threshold") != threshold:
                found.append(f"{name} {logical_id}: threshold {properties.get('Threshold')} is not the account's")
        for logical_id, stack in resources_of_type(template, "AWS::CloudFormation::Stack").items():
            child = packaged.templates.get(str(stack["Properties"]["TemplateURL"]))
            passed = stack["Properties"].get("Parameters", {}).get("ConcurrencyAlarmThreshold")
            if child and "ConcurrencyAlarmThreshold" in child.get("Parameters", {}) and passed != threshold:
                found.append(f"{name} {logical_id}: does not pass ConcurrencyAlarmThreshold down")
    return found


_KNOWN_ISSUES = "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-known-issues.html"
RULES = [
    Rule("importer keywords", _KNOWN_ISSUES, importer_keywords),
    Rule("operation-level security", _KNOWN_ISSUES, operation_security),
    Rule(
        "no YAML aliases",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-formats.html",
        yaml_aliases,
    ),
    Rule(
        "physical names within their limits",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html",
        name_lengths,
    ),
    Rule(
        "RetainExceptOnCreate",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html",
        retain_except_on_create,
    ),
    Rule(
        "alarm topics CloudWatch can publish to",
        "https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns",
        alarm_topics,
    ),
    Rule(
        "log levels that keep metrics and sampled DEBUG lines",
        "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html",
        log_levels,
    ),
    Rule(
        "concurrency alarms on the account's limit",
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
        concurrency_thresholds,
    ),
]


def findings(packaged: Packaged) -> Iterator[tuple[Rule, str]]:
    for rule in RULES:
        for finding in rule.check(packaged):
            yield rule, finding


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def _schema_problems(schema: Any, at: str = "") -> Iterator[str]:
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _schema_problems(item, f"{at}/{index}")
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key in UNSUPPORTED_IN_MODELS:
            yield f"{at or '/'}: {key} is not supported"
        elif key == "format" and value in UNSUPPORTED_FORMATS:
            yield f"{at or '/'}: format {value} is not supported"
        elif key in {"properties", "patternProperties", "definitions"} and isinstance(value, dict):
            for name, item in value.items():
                yield from _schema_problems(item, f"{at}/{name}")
        else:
            yield from _schema_problems(value, f"{at}/{key}")


def _parameter_problems(parameter: dict[str, Any]) -> list[str]:
    if "$ref" in parameter:
        return []
    extra = sorted(set(parameter) - {*PARAMETER_ATTRIBUTES, "schema"})
    extra += [f"schema.{key}" for key in sorted(set(parameter.get("schema", {})) - {"type"})]
    return [f"{', '.join(extra)} ignored by the importer"] if extra else []


def _undefaulted(template: dict[str, Any]) -> dict[str, str]:
    return {key: "p" for key, spec in template.get("Parameters", {}).items() if "Default" not in spec}


def _key_id(reference: dict[str, Any]) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` names."""
    if "Ref" in reference:
        return str(reference["Ref"])
    attribute = reference.get("Fn::GetAtt")
    if isinstance(attribute, list) and attribute:
        return str(attribute[0])
    return str(attribute).split(".", 1)[0] if isinstance(attribute, str) else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]
