"""The intrinsic functions (`deploy/intrinsics.py`) resolved with the local account and region, and the
names `Ref` answers locally."""

from __future__ import annotations

from typing import Any

from deploy.intrinsics import Resolver, UnsupportedIntrinsicError
from local.account import ACCOUNT_ID, REGION

__all__ = ["Resolver", "UnsupportedIntrinsicError", "local_arn", "physical_names", "resolver_for"]


def resolver_for(template: dict[str, Any], parameters: dict[str, str], **known: Any) -> Resolver:
    """A resolver with the local region and account."""
    return Resolver(template, parameters=parameters, region=REGION, account_id=ACCOUNT_ID, **known)


_NAME_PROPERTY = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::IAM::Role": "RoleName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::CompositeAlarm": "AlarmName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::KMS::Alias": "AliasName",
}


def physical_names(template: dict[str, Any], resolver: Resolver) -> dict[str, str]:
    """What `Ref` answers for each resource locally: its declared name, else a stack-scoped one."""
    names: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        declared = properties.get(_NAME_PROPERTY.get(resource["Type"], ""))
        names[logical_id] = str(resolver.resolve(declared)) if declared is not None else f"local-{logical_id}"
    return names


def local_arn(name: str) -> str:
    return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{name}"
