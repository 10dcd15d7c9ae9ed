from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.account import ACCOUNT_ID, REGION
from local.cloudformation.provision import table_request
from local.cloudformation.resolver import Resolver, UnsupportedIntrinsicError


def local_resolver(template: Any, **given: Any) -> Resolver:
    return Resolver(template, region=REGION, account_id=ACCOUNT_ID, **given)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_load_template_turns_short_tags_into_long_form(tmp_path: Path) -> None:
    # Given a template using every short form the project's templates use
    path = write(
        tmp_path,
        """
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  Thing:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "things-${Stage}"
      Arn: !GetAtt Other.Arn
      Listed: !GetAtt [Other, Arn]
      Joined: !Join [",", [a, !Ref Stage]]
      Chosen: !If [IsProd, big, small]
""",
    )
    # When it is loaded
    template = load_template(path)
    # Then every tag became the long form CloudFormation documents
    properties = template["Resources"]["Thing"]["Properties"]
    assert properties["QueueName"] == {"Fn::Sub": "things-${Stage}"}
    assert properties["Arn"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert properties["Listed"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert properties["Joined"] == {"Fn::Join": [",", ["a", {"Ref": "Stage"}]]}
    assert template["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}


def test_load_template_rejects_a_file_without_resources(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a CloudFormation template"):
        load_template(write(tmp_path, "Parameters: {}\n"))


def test_load_template_rejects_unknown_tags(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unknown CloudFormation tag !Bogus"):
        load_template(write(tmp_path, "Resources:\n  X: !Bogus y\n"))


def test_resolver_evaluates_refs_subs_getatts_and_conditions() -> None:
    template = {
        "Parameters": {"Stage": {"Default": "dev"}, "Mode": {"Default": "PAY_PER_REQUEST"}},
        "Conditions": {"Provisioned": {"Fn::Equals": [{"Ref": "Mode"}, "PROVISIONED"]}},
        "Resources": {},
    }
    resolver = local_resolver(
        template,
        parameters={"Stage": "prod"},
        resources={"Bucket": "my-bucket"},
        attributes={"Bucket.Arn": "arn:aws:s3:::my-bucket"},
    )
    assert resolver.resolve({"Ref": "Stage"}) == "prod"
    assert (
        resolver.resolve({"Fn::Sub": "t-${Stage}-${AWS::Region}-${AWS::AccountId}"}) == "t-prod-us-east-1-123456789012"
    )
    assert resolver.resolve({"Fn::Sub": "${Bucket.Arn}/*"}) == "arn:aws:s3:::my-bucket/*"
    assert resolver.resolve({"Fn::Sub": ["${X}-${Stage}", {"X": {"Ref": "Bucket"}}]}) == "my-bucket-prod"
    assert resolver.resolve({"Fn::Sub": "literal ${!NotAVariable}"}) == "literal ${NotAVariable}"
    assert resolver.resolve({"Fn::GetAtt": ["Bucket", "Arn"]}) == "arn:aws:s3:::my-bucket"
    assert resolver.resolve({"Fn::Join": ["/", ["a", {"Ref": "Stage"}]]}) == "a/prod"
    # A property set to AWS::NoValue disappears, as in CloudFormation
    chosen = {"Capacity": {"Fn::If": ["Provisioned", 5, {"Ref": "AWS::NoValue"}]}, "Keep": 1}
    assert resolver.resolve(chosen) == {"Keep": 1}


def test_resolver_refuses_what_it_does_not_understand() -> None:
    resolver = local_resolver({"Resources": {}})
    with pytest.raises(UnsupportedIntrinsicError):
        resolver.resolve({"Fn::GetAZs": ""})
    with pytest.raises(KeyError, match="Missing"):
        resolver.resolve({"Ref": "Missing"})


def test_resolver_requires_parameters_without_defaults() -> None:
    with pytest.raises(ValueError, match="TableName"):
        local_resolver({"Parameters": {"TableName": {"Type": "String"}}, "Resources": {}})


def test_data_template_table_becomes_the_create_table_request() -> None:
    # Given the data stack as deployed
    template = load_template(TEMPLATES / "data.yaml")
    table = resources_of_type(template, "AWS::DynamoDB::Table")["Table"]
    properties = local_resolver(template, parameters={"Stage": "test"}).resolve(table["Properties"])
    # When it is turned into a CreateTable request
    request = table_request(properties)
    # Then the request carries the schema, indexes and stream the services rely on
    assert request["TableName"] == "appointments-test"
    assert request["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in request  # removed by AWS::NoValue on demand
    assert [k["AttributeName"] for k in request["KeySchema"]] == ["PK", "SK"]
    assert {index["IndexName"] for index in request["GlobalSecondaryIndexes"]} == {"GSI1", "GSI2"}
    assert all("ProvisionedThroughput" not in index for index in request["GlobalSecondaryIndexes"])
    assert request["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert request["SSESpecification"]["Enabled"] is True
    assert request["DeletionProtectionEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}


def test_data_template_provisioned_mode_sets_capacity_everywhere_within_the_free_tier() -> None:
    template = load_template(TEMPLATES / "data.yaml")
    resolver = local_resolver(template, parameters={"Stage": "test", "TableBillingMode": "PROVISIONED"})
    reads = writes = 0
    for table in resources_of_type(template, "AWS::DynamoDB::Table").values():
        request = table_request(resolver.resolve(table["Properties"]))
        assert request["ProvisionedThroughput"]["ReadCapacityUnits"] > 0
        assert all(
            index["ProvisionedThroughput"]["WriteCapacityUnits"] > 0 for index in request["GlobalSecondaryIndexes"]
        )
        for capacity in [request, *request["GlobalSecondaryIndexes"]]:
            reads += capacity["ProvisionedThroughput"]["ReadCapacityUnits"]
            writes += capacity["ProvisionedThroughput"]["WriteCapacityUnits"]
    assert (reads, writes) == (25, 25)  # DynamoDB's always-free 25 RCU and 25 WCU, across tables and indexes


def test_the_trail_has_a_table_of_its_own_with_no_stream_and_no_expiry() -> None:
    # The audit role alone writes it (tests/policy holds the roles to that); nothing downstream reads
    # a stream of it, and nothing in it may expire: the chain heads count every link.
    template = load_template(TEMPLATES / "data.yaml")
    audit = resources_of_type(template, "AWS::DynamoDB::Table")["AuditTable"]
    properties = local_resolver(template, parameters={"Stage": "test"}).resolve(audit["Properties"])
    request = table_request(properties)
    assert request["TableName"] == "appointments-test-audit"
    assert "StreamSpecification" not in request and "TimeToLiveSpecification" not in properties
    assert {index["IndexName"] for index in request["GlobalSecondaryIndexes"]} == {"GSI1"}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert audit["DeletionPolicy"] == "RetainExceptOnCreate" and request["DeletionProtectionEnabled"] is True
