"""The stage's web ACL: the rate-based rule per client IP and the response it blocks with.

The rule counts every request an address makes, blocked ones too, over a window looking back from
now (EvaluationWindowSec); a request that takes the count over the limit is blocked, until the
count within the window is back at the limit. That is the same as "the limit-plus-first newest
request has left the window", so an address keeps only its newest limit + 1 request times.
Time is the stack's clock (`local/clock.py`): a test moves it rather than sleeping out a window.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deploy.templates import TEMPLATES, load_template
from local.account import REGION
from local.apigateway.http_messages import HttpResponse
from local.cloudformation.resolver import resolver_for

NAMESPACE = "AWS/WAFV2"
_CONTENT_TYPES = {"APPLICATION_JSON": "application/json", "TEXT_PLAIN": "text/plain", "TEXT_HTML": "text/html"}

# (namespace, name, dimensions, value, at): what MetricStore.put takes
MetricSink = Callable[[str, str, Mapping[str, str], float, float], None]


@dataclass(frozen=True)
class RateRule:
    """A rate-based rule aggregating on the client IP, blocking with a custom response."""

    name: str
    limit: int
    window_seconds: int
    status: int
    headers: Mapping[str, str]
    body: bytes

    def response(self) -> HttpResponse:
        return HttpResponse(self.status, dict(self.headers), self.body, error_message=f"WAF rule {self.name}")


def rate_rule_from_template(parameters: Mapping[str, str]) -> tuple[str, RateRule]:
    """The web ACL's name and its rate-based rule, as `cloudformation/api.yaml` makes them for `parameters`."""
    template = load_template(TEMPLATES / "api.yaml")
    unread = {name: "local" for name, spec in template["Parameters"].items() if "Default" not in spec}
    own = {key: value for key, value in parameters.items() if key in template["Parameters"]}
    resolver = resolver_for(template, {**unread, **own})
    acl = next(r for r in template["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL")
    properties: dict[str, Any] = resolver.resolve(acl["Properties"])
    (rule,) = [rule for rule in properties["Rules"] if "RateBasedStatement" in rule["Statement"]]
    statement = rule["Statement"]["RateBasedStatement"]
    if statement.get("AggregateKeyType") != "IP":
        raise ValueError("the local WAF aggregates on the client IP only")
    custom = rule["Action"]["Block"]["CustomResponse"]
    body = properties["CustomResponseBodies"][custom["CustomResponseBodyKey"]]
    headers = {"Content-Type": _CONTENT_TYPES[body["ContentType"]]}
    headers.update({header["Name"]: str(header["Value"]) for header in custom.get("ResponseHeaders", [])})
    return str(properties["Name"]), RateRule(
        name=rule["VisibilityConfig"]["MetricName"],
        limit=int(statement["Limit"]),
        window_seconds=int(statement.get("EvaluationWindowSec", 300)),
        status=int(custom["ResponseCode"]),
        headers=headers,
        body=str(body["Content"]).encode(),
    )


class WebAcl:
    """Evaluates each API request against the rate rule before API Gateway sees it."""

    def __init__(self, name: str, rule: RateRule, now: Callable[[], float], metrics: MetricSink | None = None) -> None:
        self.name = name
        self.rule = rule
        self._now = now
        self._metrics = metrics
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_template(
        cls, parameters: Mapping[str, str], now: Callable[[], float], metrics: MetricSink | None = None
    ) -> WebAcl:
        name, rule = rate_rule_from_template(parameters)
        return cls(name, rule, now, metrics)

    def evaluate(self, source_ip: str) -> HttpResponse | None:
        """The block response for a request from `source_ip`, or None to let it through."""
        at = self._now()
        with self._lock:
            seen = self._seen.setdefault(source_ip, deque(maxlen=self.rule.limit + 1))
            seen.append(at)
            while seen and seen[0] <= at - self.rule.window_seconds:
                seen.popleft()
            blocked = len(seen) > self.rule.limit
        self._count(blocked, at)
        return self.rule.response() if blocked else None

    def _count(self, blocked: bool, at: float) -> None:
        if self._metrics is None:
            return
        acl = {"WebACL": self.name, "Region": REGION}
        if blocked:
            self._metrics(NAMESPACE, "BlockedRequests", {**acl, "Rule": self.rule.name}, 1, at)
            self._metrics(NAMESPACE, "BlockedRequests", {**acl, "Rule": "ALL"}, 1, at)
        else:
            self._metrics(NAMESPACE, "AllowedRequests", {**acl, "Rule": "ALL"}, 1, at)
