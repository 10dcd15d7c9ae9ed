"""The table and bucket the local stack creates are the ones cloudformation/data.yaml describes."""

from __future__ import annotations

from typing import Any

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.cloudformation.provision import DataStack


def test_table_matches_the_template(dynamodb: Any, data_stack: DataStack) -> None:
    template = load_template(TEMPLATES / "data.yaml")
    declared = resources_of_type(template, "AWS::DynamoDB::Table")["Table"]
    table = dynamodb.describe_table(TableName=data_stack.table_name)["Table"]
    assert table["KeySchema"] == declared["Properties"]["KeySchema"]
    declared_indexes = {
        index["IndexName"]: index["KeySchema"] for index in declared["Properties"]["GlobalSecondaryIndexes"]
    }
    assert {index["IndexName"]: index["KeySchema"] for index in table["GlobalSecondaryIndexes"]} == declared_indexes
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=data_stack.table_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")
    backups = dynamodb.describe_continuous_backups(TableName=data_stack.table_name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert data_stack.table_stream_arn == table["LatestStreamArn"]


def test_the_audit_table_matches_the_template(dynamodb: Any, data_stack: DataStack) -> None:
    declared = resources_of_type(load_template(TEMPLATES / "data.yaml"), "AWS::DynamoDB::Table")["AuditTable"]
    table = dynamodb.describe_table(TableName=data_stack.audit_table_name)["Table"]
    assert data_stack.audit_table_arn == table["TableArn"]
    assert table["KeySchema"] == declared["Properties"]["KeySchema"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["GSI1"]
    assert "LatestStreamArn" not in table


def test_audit_bucket_is_versioned_locked_encrypted_and_private(s3: Any, data_stack: DataStack) -> None:
    bucket = data_stack.audit_bucket_name
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_the_backup_bucket_is_versioned_locked_encrypted_and_private(s3: Any, data_stack: DataStack) -> None:
    bucket = data_stack.backup_bucket_name
    assert bucket == "appointments-bak-it-123456789012-us-east-1" and data_stack.backup_bucket_arn.endswith(bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 365)
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())


def test_deploying_twice_finds_the_existing_stack(dynamodb: Any, s3: Any, data_stack: DataStack) -> None:
    from local.cloudformation.provision import deploy_data_stack

    assert deploy_data_stack(dynamodb, s3, stage="it") == data_stack
