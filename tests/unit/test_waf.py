"""The WAF on the API stage: the web ACL's template, and the local stack's rate rule made from it."""

from __future__ import annotations

import json
from typing import Any

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.apigateway.api import ApiDefinition
from local.wafv2.web_acl import WebAcl, rate_rule_from_template

API = load_template(TEMPLATES / "api.yaml")


def web_acl() -> dict[str, Any]:
    (acl,) = resources_of_type(API, "AWS::WAFv2::WebACL").values()
    return dict(acl["Properties"])


def rules() -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in web_acl()["Rules"]}


def test_the_web_acl_is_regional_allows_by_default_and_measures_every_rule() -> None:
    acl = web_acl()
    assert acl["Scope"] == "REGIONAL"  # an API Gateway stage's scope (CLOUDFRONT is for distributions)
    assert acl["DefaultAction"] == {"Allow": {}}
    assert acl["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
    for name, rule in rules().items():
        assert rule["VisibilityConfig"] == {
            "CloudWatchMetricsEnabled": True, "MetricName": name, "SampledRequestsEnabled": True,
        }  # fmt: skip


def test_the_web_acl_limits_each_client_ip_first_then_runs_the_managed_groups() -> None:
    by_priority = sorted(web_acl()["Rules"], key=lambda rule: rule["Priority"])
    assert [rule["Name"] for rule in by_priority] == [
        "RateLimitPerIp", "AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
    ]  # fmt: skip
    statement = by_priority[0]["Statement"]["RateBasedStatement"]
    assert statement == {
        "Limit": {"Ref": "WafRateLimit"},
        "EvaluationWindowSec": {"Ref": "WafRateWindowSeconds"},
        "AggregateKeyType": "IP",  # the connecting address; a forwarded header is the client's to forge
    }
    assert API["Parameters"]["WafRateLimit"]["MinValue"] == 10  # WAF's lowest limit
    assert API["Parameters"]["WafRateWindowSeconds"]["AllowedValues"] == [60, 120, 300, 600]
    for name in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"):
        rule = rules()[name]
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
        assert rule["Statement"]["ManagedRuleGroupStatement"]["Name"] == name
        assert rule["OverrideAction"] == {"None": {}}  # the group's own actions: it blocks


def test_the_rate_rule_answers_429_with_the_apis_throttled_problem() -> None:
    custom = rules()["RateLimitPerIp"]["Action"]["Block"]["CustomResponse"]
    assert custom["ResponseCode"] == 429
    body = web_acl()["CustomResponseBodies"][custom["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    problem = json.loads(body["Content"])
    # The THROTTLED gateway response's shape: WAF blocks before API Gateway, so its gateway responses never apply.
    throttled = ApiDefinition.load().gateway_response("THROTTLED", "detail", "r-1")
    assert throttled.status == custom["ResponseCode"]
    assert set(problem) == set(json.loads(throttled.body)) - {"requestId"}
    assert {key: problem[key] for key in ("type", "title", "status", "code")} == {
        "type": "about:blank", "title": "Too Many Requests", "status": 429, "code": "THROTTLED",
    }  # fmt: skip


def test_the_web_acl_guards_the_api_stage() -> None:
    (association,) = resources_of_type(API, "AWS::WAFv2::WebACLAssociation").values()
    properties = association["Properties"]
    assert properties["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert properties["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${RestApi}/stages/${ApiStage}"
    }


def test_the_root_stack_sets_the_rate_limit_and_window() -> None:
    root = load_template(TEMPLATES / "root.yaml")
    given = root["Resources"]["Api"]["Properties"]["Parameters"]
    assert given["WafRateLimit"] == {"Ref": "WafRateLimit"}
    assert given["WafRateWindowSeconds"] == {"Ref": "WafRateWindowSeconds"}
    for name in ("WafRateLimit", "WafRateWindowSeconds"):
        assert root["Parameters"][name]["Default"] == API["Parameters"][name]["Default"]


# The local rate rule --------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_local_rule_is_the_templates_for_the_stages_parameters() -> None:
    name, rule = rate_rule_from_template({"Stage": "s", "WafRateLimit": "25", "WafRateWindowSeconds": "60"})
    assert (name, rule.limit, rule.window_seconds, rule.status) == ("appointments-s", 25, 60, 429)
    assert rule.headers["Retry-After"] == "60"
    assert "Access-Control-Allow-Origin" not in rule.headers  # CORS off
    _, with_cors = rate_rule_from_template({"Stage": "s", "AllowedOrigins": "https://clinic.example"})
    assert with_cors.headers["Access-Control-Allow-Origin"] == "*"  # a static answer: WAF cannot echo


def test_an_address_over_the_limit_is_blocked_until_its_window_has_room_again() -> None:
    clock = Clock()
    metrics: list[tuple[str, str, dict[str, str]]] = []
    acl = WebAcl.from_template(
        {"Stage": "s", "WafRateLimit": "10", "WafRateWindowSeconds": "60"},
        clock,
        lambda namespace, name, dimensions, value, at: metrics.append((namespace, name, dict(dimensions))),
    )
    # Given ten requests from one address within the window
    for _ in range(10):
        assert acl.evaluate("198.51.100.7") is None
        clock.now += 1
    # When the eleventh comes
    blocked = acl.evaluate("198.51.100.7")
    # Then it is blocked with the template's answer, and another address is not
    assert blocked is not None and blocked.status == 429
    assert json.loads(blocked.body)["code"] == "THROTTLED"
    assert blocked.headers["Content-Type"] == "application/json"
    assert acl.evaluate("203.0.113.9") is None
    # Blocked requests count too: one second before the first has aged out, still blocked
    clock.now += 48
    assert acl.evaluate("198.51.100.7") is not None
    # Once the window holds no more than the limit again, it passes
    clock.now += 12
    assert acl.evaluate("198.51.100.7") is None
    rule = {"WebACL": "appointments-s", "Region": "us-east-1", "Rule": "RateLimitPerIp"}
    assert metrics.count(("AWS/WAFV2", "BlockedRequests", rule)) == 2
    assert ("AWS/WAFV2", "AllowedRequests", {**rule, "Rule": "ALL"}) in metrics


def test_the_dashboard_charts_what_each_rule_blocks_under_the_web_acls_own_name() -> None:
    from local.cloudwatch.dashboard import dashboard_body

    body = dashboard_body({"Stage": "s"})
    charted = {
        (row[1], tuple(row[2:8]))
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"]["metrics"]
        if isinstance(row, list) and row[0] == "AWS/WAFV2"
    }
    name, _ = rate_rule_from_template({"Stage": "s"})
    for rule in [*rules(), "ALL"]:
        assert ("BlockedRequests", ("WebACL", name, "Region", "us-east-1", "Rule", rule)) in charted, rule
    assert ("AllowedRequests", ("WebACL", name, "Region", "us-east-1", "Rule", "ALL")) in charted
