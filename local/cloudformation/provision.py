"""Create the stack's AWS resources in the emulator from the CloudFormation templates themselves.

The local stack never describes a table or a bucket on its own: it reads `cloudformation/*.yaml`,
resolves the intrinsic functions with the local parameter values, and turns each resource's
properties into the API calls CloudFormation would make. So the table the tests and `make run` use
is the table `make deploy` creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.cloudformation.resolver import resolver_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def table_request(properties: dict[str, Any]) -> dict[str, Any]:
    """CreateTable arguments from resolved `AWS::DynamoDB::Table` properties."""
    request: dict[str, Any] = {
        "TableName": properties["TableName"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if "ProvisionedThroughput" in properties:
        request["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
    if "GlobalSecondaryIndexes" in properties:
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        request["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    if "SSESpecification" in properties:
        sse = properties["SSESpecification"]
        request["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled", False)),
            **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
        }
    if "DeletionProtectionEnabled" in properties:
        request["DeletionProtectionEnabled"] = str(properties["DeletionProtectionEnabled"]).lower() == "true"
    if "Tags" in properties:
        request["Tags"] = properties["Tags"]
    return request


@dataclass(frozen=True)
class DataStack:
    """What the data stack outputs, as the services' stacks receive it."""

    table_name: str
    table_arn: str
    table_stream_arn: str
    audit_table_name: str
    audit_table_arn: str
    audit_bucket_name: str
    audit_bucket_arn: str
    backup_bucket_name: str
    backup_bucket_arn: str

    def as_parameters(self) -> dict[str, str]:
        return {
            "TableName": self.table_name,
            "TableArn": self.table_arn,
            "TableStreamArn": self.table_stream_arn,
            "AuditTableName": self.audit_table_name,
            "AuditTableArn": self.audit_table_arn,
            "AuditBucketName": self.audit_bucket_name,
            "AuditBucketArn": self.audit_bucket_arn,
            "BackupBucketName": self.backup_bucket_name,
            "BackupBucketArn": self.backup_bucket_arn,
        }


def create_table(dynamodb: DynamoDBClient, properties: dict[str, Any]) -> dict[str, Any]:
    """Create one table (with its TTL and point-in-time recovery settings); return its description."""
    description = dynamodb.create_table(**table_request(properties))["TableDescription"]
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=properties["TableName"],
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    pitr = properties.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=properties["TableName"],
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return dict(description)


def create_bucket(s3: S3Client, properties: dict[str, Any]) -> None:
    """Create one bucket with its versioning, object lock, encryption and public access block."""
    name = properties["BucketName"]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bool(properties.get("ObjectLockEnabled")))
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=properties["VersioningConfiguration"])
    lock = properties.get("ObjectLockConfiguration")
    if lock:
        rule = lock["Rule"]["DefaultRetention"]
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": rule["Mode"], "Days": int(rule["Days"])}},
            },
        )
    if "BucketEncryption" in properties:
        # CloudFormation and the S3 API name the default-encryption block differently.
        rules: Any = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
            }
            for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )


def deploy_data_stack(dynamodb: DynamoDBClient, s3: S3Client, stage: str) -> DataStack:
    """Create the data stack's tables and buckets in the emulator (or find them already there)."""
    template = load_template(TEMPLATES / "data.yaml")
    resolver = resolver_for(template, {"Stage": stage})
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    buckets = {
        logical_id: resolver.resolve(resource["Properties"])
        for logical_id, resource in resources_of_type(template, "AWS::S3::Bucket").items()
    }

    existing = set(dynamodb.list_tables()["TableNames"])
    made: dict[str, dict[str, Any]] = {}
    for logical_id, resource in tables.items():
        properties = resolver.resolve(resource["Properties"])
        if properties["TableName"] in existing:
            made[logical_id] = dict(dynamodb.describe_table(TableName=properties["TableName"])["Table"])
        else:
            made[logical_id] = create_table(dynamodb, properties)
    existing_buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for properties in buckets.values():
        if properties["BucketName"] not in existing_buckets:
            create_bucket(s3, properties)
    bucket, backups = buckets["AuditBucket"]["BucketName"], buckets["BackupBucket"]["BucketName"]
    table, audit_table = made["Table"], made["AuditTable"]
    return DataStack(
        table_name=table["TableName"],
        table_arn=table["TableArn"],
        table_stream_arn=table["LatestStreamArn"],
        audit_table_name=audit_table["TableName"],
        audit_table_arn=audit_table["TableArn"],
        audit_bucket_name=bucket,
        audit_bucket_arn=f"arn:aws:s3:::{bucket}",
        backup_bucket_name=backups,
        backup_bucket_arn=f"arn:aws:s3:::{backups}",
    )


def deploy_queues(sqs: SQSClient, template_name: str, parameters: dict[str, str]) -> dict[str, str]:
    """Create a service stack's SQS queues; answer `{logical id: queue url}`."""
    template = load_template(TEMPLATES / template_name)
    resolver = resolver_for(template, parameters)
    urls: dict[str, str] = {}
    for logical_id, resource in resources_of_type(template, "AWS::SQS::Queue").items():
        properties = resolver.resolve(resource.get("Properties", {}))
        attributes: Any = {
            key: str(properties[key])
            for key in ("MessageRetentionPeriod", "VisibilityTimeout", "SqsManagedSseEnabled")
            if key in properties
        }
        urls[logical_id] = sqs.create_queue(QueueName=properties["QueueName"], Attributes=attributes)["QueueUrl"]
    return urls


def deploy_event_buses(events: EventBridgeClient, template_name: str, parameters: dict[str, str]) -> list[str]:
    """Create a service stack's EventBridge buses; answer their names."""
    template = load_template(TEMPLATES / template_name)
    resolver = resolver_for(template, parameters)
    names = []
    for resource in resources_of_type(template, "AWS::Events::EventBus").values():
        name = str(resolver.resolve(resource.get("Properties", {}))["Name"])
        events.create_event_bus(Name=name)
        names.append(name)
    return names


def deploy_keys(kms: Any, template_name: str, parameters: dict[str, str]) -> list[str]:
    """Create a service stack's KMS keys, each under the alias its `AWS::KMS::Alias` gives it (what
    the functions name the key by); answer the aliases."""
    template = load_template(TEMPLATES / template_name)
    resolver = resolver_for(template, parameters)
    existing = {alias["AliasName"] for alias in kms.list_aliases().get("Aliases", [])}
    made = []
    for resource in resources_of_type(template, "AWS::KMS::Alias").values():
        alias = str(resolver.resolve(resource["Properties"]["AliasName"]))
        if alias not in existing:
            key = kms.create_key(Description=f"{alias} (local)", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key)
        made.append(alias)
    return made


def deploy_schedule_groups(scheduler: Any, template_name: str, parameters: dict[str, str]) -> list[str]:
    """Create a service stack's EventBridge Scheduler groups; answer their names."""
    template = load_template(TEMPLATES / template_name)
    resolver = resolver_for(template, parameters)
    existing = {group["Name"] for group in scheduler.list_schedule_groups().get("ScheduleGroups", [])}
    names = []
    for resource in resources_of_type(template, "AWS::Scheduler::ScheduleGroup").values():
        name = str(resolver.resolve(resource["Properties"])["Name"])
        if name not in existing:
            scheduler.create_schedule_group(Name=name)
        names.append(name)
    return names
