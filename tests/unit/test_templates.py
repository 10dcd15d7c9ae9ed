"""The templates as `make deploy` ships them, checked without AWS: the root stack wires every child
as it declares itself, every handler exists in the code its function ships, every environment
variable is one the service's settings model (or Powertools) reads, every API operation is
integrated with the function that serves it, and nothing from tests or the local stack ships."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import openapi
from deploy.openapi import load_document
from deploy.package import PackagingError, build, check_handlers
from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.apigateway.api import ApiDefinition
from services.audit.settings import AuditSettings, BackupSettings
from services.booking.settings import BookingSettings, NotificationSettings, PublisherSettings, WebhookSettings
from services.common.settings import ServiceSettings

# Read by Powertools itself, not by our settings models.
POWERTOOLS_OWN = {"POWERTOOLS_LOGGER_SAMPLE_RATE"}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "AvailabilityFunction": ServiceSettings,
    "BookingFunction": BookingSettings,
    "WaitlistFunction": ServiceSettings,
    "PublisherFunction": PublisherSettings,
    "WebhookFunction": WebhookSettings,
    "NotificationFunction": NotificationSettings,
    "AuditFunction": AuditSettings,
    "BackupFunction": BackupSettings,
}
HANDLERS = {
    "AvailabilityFunction": "services.availability.handler",
    "BookingFunction": "services.booking.handler",
    "AuditFunction": "services.audit.handler",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    build(layer=False, out=out)
    return out


def functions() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in TEMPLATES.glob("*.yaml"):
        found |= {
            k: v["Properties"] for k, v in resources_of_type(load_template(path), "AWS::Lambda::Function").items()
        }
    return found


def test_the_root_stack_passes_each_child_exactly_the_parameters_it_declares() -> None:
    root = load_template(TEMPLATES / "root.yaml")
    children = resources_of_type(root, "AWS::CloudFormation::Stack")
    assert {c["Properties"]["TemplateURL"] for c in children.values()} == {
        f"{name}.yaml" for name in ("monitoring", "data", "auth", "availability", "booking", "audit", "api", "budget")
    }
    for logical_id, child in children.items():
        declared = load_template(TEMPLATES / child["Properties"]["TemplateURL"]).get("Parameters", {})
        given = set(child["Properties"].get("Parameters", {}))
        assert given <= set(declared), f"{logical_id} passes parameters its template does not declare"
        required = {name for name, spec in declared.items() if "Default" not in spec}
        assert required <= given, f"{logical_id} misses {required - given}"
    # every child output the root reads (in parameters and outputs) is one the child declares
    text = json.dumps(root)
    read = re.findall(r'"Fn::GetAtt": \["(\w+)", "Outputs\.(\w+)"\]', text)
    assert len(read) >= 20
    for child_id, name in read:
        assert name in load_template(TEMPLATES / children[child_id]["Properties"]["TemplateURL"])["Outputs"]


def test_every_handler_exists_in_the_code_its_function_ships(built: Path) -> None:
    check_handlers(built / "cloudformation", built)
    shipped = {p.relative_to(built / "functions").as_posix() for p in (built / "functions").rglob("*.py")}
    assert "booking/services/booking/handler.py" in shipped and "booking/services/common/http.py" in shipped
    assert not [p for p in shipped if p.split("/")[2] not in {"common", p.split("/")[0]} and p.count("/") > 2]
    assert not [p for p in shipped if "/tests/" in p or "/local/" in p]


def test_a_handler_that_is_not_shipped_fails_the_build(built: Path, tmp_path: Path) -> None:
    broken = tmp_path / "cloudformation"
    broken.mkdir()
    text = (built / "cloudformation" / "booking.yaml").read_text().replace("handler.lambda_handler", "handlers.main")
    (broken / "booking.yaml").write_text(text)
    with pytest.raises(PackagingError, match=re.escape("functions/booking/services/booking/handlers.py")):
        check_handlers(broken, built)


@pytest.mark.parametrize("logical_id", sorted(SETTINGS))
def test_every_environment_variable_is_read_by_the_services_settings(logical_id: str) -> None:
    variables = set(functions()[logical_id]["Environment"]["Variables"])
    model = SETTINGS[logical_id]
    aliases = {str(f.alias) for f in model.model_fields.values()}
    required = {str(f.alias) for f in model.model_fields.values() if f.is_required()}
    assert variables - POWERTOOLS_OWN <= aliases, f"set but never read: {variables - POWERTOOLS_OWN - aliases}"
    assert required <= variables, f"read but never set: {required - variables}"


def test_every_api_operation_is_integrated_with_the_function_that_serves_it() -> None:
    import importlib

    api = ApiDefinition.load()
    served: dict[str, set[tuple[str, str]]] = {}
    for logical_id, module in HANDLERS.items():
        schema = importlib.import_module(module).app.get_openapi_schema()
        served[logical_id] = {
            (method.upper(), path)
            for path, item in (schema.paths or {}).items()
            for method in ("get", "put", "post", "delete", "patch")
            if getattr(item, method, None) is not None
        }
    for route in api.routes:
        if route.integration == "mock":
            continue
        assert route.function in served, f"{route.operation_id} integrates {route.function}"
        assert (route.method, route.resource) in served[route.function], (
            f"{route.method} {route.resource} goes to {route.function}, which does not serve it"
        )
    integrated = {(r.method, r.resource) for r in api.routes}
    for logical_id, routes in served.items():
        assert routes <= integrated, f"{logical_id} serves routes the API never sends it: {routes - integrated}"


def test_the_deployed_openapi_answers_its_public_document_from_the_mock() -> None:
    document = yaml.safe_load(openapi.shipped_openapi_text())
    mock = document["paths"]["/openapi.json"]["get"]["x-amazon-apigateway-integration"]
    template = str(mock["responses"]["default"]["responseTemplates"]["application/json"])
    # what Velocity answers: the #set line sets $dollar, each ${dollar} becomes "$"
    assert template.startswith("#set($dollar = '$')\n") and "$ref" not in template
    public = json.loads(template.split("\n", 1)[1].replace("${dollar}", "$"))
    assert public == ApiDefinition.load().public_document()
    assert "x-amazon-apigateway-integration" not in json.dumps(public)


def test_the_api_deployment_is_renamed_with_the_documents_hash(built: Path) -> None:
    api = load_template(built / "cloudformation" / "api.yaml")
    (deployment,) = resources_of_type(api, "AWS::ApiGateway::Deployment")
    assert deployment.startswith("ApiDeployment") and "OPENAPIHASH" not in deployment
    stage = next(iter(resources_of_type(api, "AWS::ApiGateway::Stage").values()))
    assert stage["Properties"]["DeploymentId"] == {"Ref": deployment}
    assert stage["Properties"]["TracingEnabled"] is True
    assert stage["Properties"]["MethodSettings"][0]["MetricsEnabled"] is True


def test_a_document_that_velocity_would_run_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    document = load_document()
    document["info"]["description"] = "## Bookings\nNotes #set them apart"
    monkeypatch.setattr(openapi, "load_document", lambda path: document)
    with pytest.raises(openapi.DocumentError, match="'##'"):
        openapi.shipped_openapi_text()


def test_the_budget_counts_gross_spend_and_anomalies_reach_the_alarm_email() -> None:
    budget = load_template(TEMPLATES / "budget.yaml")
    (properties,) = [r["Properties"] for r in resources_of_type(budget, "AWS::Budgets::Budget").values()]
    # credits and refunds are deducted unless told otherwise (CostTypes' defaults are true)
    assert properties["Budget"]["CostTypes"] == {"IncludeCredit": False, "IncludeRefund": False}
    (monitor,) = resources_of_type(budget, "AWS::CE::AnomalyMonitor").values()
    assert (monitor["Properties"]["MonitorType"], monitor["Properties"]["MonitorDimension"]) == (
        "DIMENSIONAL",
        "SERVICE",
    )
    assert monitor["Condition"] == "MakesMonitor"  # one services monitor per account: reused when it exists
    (subscription,) = resources_of_type(budget, "AWS::CE::AnomalySubscription").values()
    assert subscription["Properties"]["Frequency"] == "DAILY"  # e-mail subscribers need DAILY or WEEKLY
    assert subscription["Properties"]["Subscribers"] == [{"Type": "EMAIL", "Address": {"Ref": "AlarmEmail"}}]


def test_the_audit_consumer_never_ages_a_record_out() -> None:
    # Records older than MaximumRecordAgeInSeconds go to the DLQ unprocessed: -1 keeps them until
    # they are delivered (the stream keeps them 24 hours, which the iterator-age alarm watches)
    audit = load_template(TEMPLATES / "audit.yaml")
    (mapping,) = resources_of_type(audit, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["MaximumRecordAgeInSeconds"] == -1
    assert mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]  # what retries cannot cure


# Flows that send the password itself to Cognito from any client: USER_PASSWORD_AUTH (and its legacy
# name) and choice-based sign-in (USER_AUTH), whose first factors include a plain password.
PASSWORD_FLOWS = {"ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH", "ALLOW_USER_AUTH"}


def test_staff_sign_in_to_a_pool_that_requires_mfa_and_no_client_takes_a_bare_password() -> None:
    """Decision 0018: admins and ops live in their own pool, where every user must pass TOTP MFA;
    no app client of either pool offers password sign-in to anyone who knows its id."""
    auth = load_template(TEMPLATES / "auth.yaml")
    pools = resources_of_type(auth, "AWS::Cognito::UserPool")
    assert set(pools) == {"UserPool", "StaffUserPool"}
    staff = pools["StaffUserPool"]["Properties"]
    assert (staff["MfaConfiguration"], staff["EnabledMfas"]) == ("ON", ["SOFTWARE_TOKEN_MFA"])
    assert staff["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    groups = resources_of_type(auth, "AWS::Cognito::UserPoolGroup").values()
    assert {
        g["Properties"]["GroupName"] for g in groups if g["Properties"]["UserPoolId"] == {"Ref": "StaffUserPool"}
    } == {
        "admins",
        "ops",
    }
    clients = resources_of_type(auth, "AWS::Cognito::UserPoolClient")
    assert {c["Properties"]["UserPoolId"]["Fn::If"][1]["Ref"] for c in clients.values()} == set(pools)
    for logical_id, client in clients.items():
        flows = set(client["Properties"]["ExplicitAuthFlows"])
        assert not flows & PASSWORD_FLOWS, f"{logical_id} lets any caller sign in with a password: {flows}"
        assert "ALLOW_USER_SRP_AUTH" in flows
    # a staff session proves the authenticator again within a day
    staff_client = clients["StaffUserPoolClient"]["Properties"]
    assert (staff_client["RefreshTokenValidity"], staff_client["TokenValidityUnits"]["RefreshToken"]) == (12, "hours")


def test_the_api_takes_both_pools_and_every_function_knows_the_staff_issuer() -> None:
    document = load_document()
    authorizer = document["components"]["securitySchemes"]["CognitoUserPool"]["x-amazon-apigateway-authorizer"]
    assert authorizer["providerARNs"] == [{"Fn::Sub": "${UserPoolArn}"}, {"Fn::Sub": "${StaffUserPoolArn}"}]
    root = load_template(TEMPLATES / "root.yaml")
    children = resources_of_type(root, "AWS::CloudFormation::Stack")
    assert children["Api"]["Properties"]["Parameters"]["StaffUserPoolArn"] == {
        "Fn::GetAtt": ["Auth", "Outputs.StaffUserPoolArn"]
    }
    for logical_id, function in functions().items():
        assert function["Environment"]["Variables"]["STAFF_ISSUER"] == {"Ref": "StaffIssuer"}, logical_id
    for service in ("Availability", "Booking", "Audit"):
        given = children[service]["Properties"]["Parameters"]["StaffIssuer"]
        assert given == {"Fn::GetAtt": ["Auth", "Outputs.StaffIssuer"]}, service


def test_at_most_two_functions_read_the_tables_stream() -> None:
    """DynamoDB Streams: "More than 2 processes are reading from the same streams shard at the same
    time. Exceeding this limit may result in request throttling" (LimitExceededException). The audit
    consumer and the domain events' publisher are two; any other reader takes its changes from the bus,
    as the waitlist does (decisions 0026 and 0027)."""
    readers = []
    for path in TEMPLATES.glob("*.yaml"):
        for logical_id, mapping in resources_of_type(load_template(path), "AWS::Lambda::EventSourceMapping").items():
            if mapping["Properties"]["EventSourceArn"] == {"Ref": "TableStreamArn"}:
                readers.append(f"{path.name}:{logical_id}")
    assert sorted(readers) == ["audit.yaml:AuditStreamMapping", "booking.yaml:PublisherStreamMapping"]


def test_the_backup_bucket_locks_versions_encrypts_and_keeps_exports_as_documented() -> None:
    """Decision 0032: the exports' own bucket, every version object-locked (governance) for as long as
    it is kept (BackupKeepDays, 365) with nobody allowed to bypass it, versioned, encrypted, private,
    TLS only; exports go colder at 30 and 90 days and are deleted when their lock runs out, what
    versioning and failed uploads leave removed too. Kept when the stack goes, and adopted by the next
    deploy of the stage."""
    template = load_template(TEMPLATES / "data.yaml")
    resources, parameters = template["Resources"], template["Parameters"]
    bucket = resources["BackupBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert bucket["Condition"] == "MakesBackupBucket"
    properties = bucket["Properties"]
    assert properties["BucketName"] == {"Fn::Sub": "appointments-bak-${Stage}-${AWS::AccountId}-${AWS::Region}"}
    assert properties["ObjectLockEnabled"] is True
    retention = properties["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert retention == {"Mode": "GOVERNANCE", "Days": {"Ref": "BackupKeepDays"}}  # locked for its whole life
    assert parameters["BackupKeepDays"]["Default"] == 365 and parameters["BackupKeepDays"]["MinValue"] >= 180
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["Prefix"] == "exports/"
    assert rule["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
    ]
    assert rule["ExpirationInDays"] == {"Ref": "BackupKeepDays"}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    policy = resources["BackupBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {statement["Sid"]: statement for statement in policy}
    assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert by_sid["DenyGovernanceBypass"]["Effect"] == "Deny" and by_sid["DenyGovernanceBypass"]["Principal"] == "*"
    assert by_sid["DenyGovernanceBypass"]["Action"] == "s3:BypassGovernanceRetention"
    root = load_template(TEMPLATES / "root.yaml")["Resources"]
    assert root["Data"]["Properties"]["Parameters"]["AdoptBackupBucket"] == {"Ref": "AdoptBackupBucket"}
    assert root["Audit"]["Properties"]["Parameters"]["BackupBucketArn"] == {
        "Fn::GetAtt": ["Data", "Outputs.BackupBucketArn"]
    }


def test_the_backup_runs_hourly_as_a_role_that_may_only_invoke_its_function() -> None:
    """The schedule (EventBridge Scheduler) starts the backup function once an hour with no retries
    (the next hour is the retry), as a role that can invoke that function and nothing else, assumable
    only by Scheduler for this account; the function's own role is held by tests/policy/."""
    resources = load_template(TEMPLATES / "audit.yaml")["Resources"]
    schedule = resources["BackupSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 hour)" and schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["BackupFunction", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["BackupSchedulerRole", "Arn"]}
    assert json.loads(target["Input"]) == {"backup": "hourly"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert resources["BackupInvokeConfig"]["Properties"]["MaximumRetryAttempts"] == 0
    role = resources["BackupSchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": ["BackupFunction", "Arn"]}}
    ]
    alarm = resources["BackupAgeAlarm"]["Properties"]
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (93600, 3, 2)
    assert alarm["TreatMissingData"] == "notBreaching"  # a new stage has nothing to measure for its first hour
    # a failing backup counts as overdue: refused or failed exports, the function's errors and throttles
    expression = alarm["Metrics"][0]["Expression"]
    assert expression == "MAX([FILL(age, 0), IF(FILL(failed, 0) + FILL(errors, 0) + FILL(throttles, 0) > 0, 93601, 0)])"
    stats = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"][1:]}
    assert stats == {"age": "BackupAge", "failed": "BackupExportFailed", "errors": "Errors", "throttles": "Throttles"}
