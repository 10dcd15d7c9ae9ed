"""Stands in for AWS WAF (v2): the web ACL on the API stage, as `cloudformation/api.yaml` defines it.

- `web_acl.py`: the rate-based rule per client IP, its limit and evaluation window, and the custom
  response it blocks with (status, body, headers), all read from the template with the stage's
  parameters; the AWS/WAFV2 metrics a request adds (AllowedRequests, BlockedRequests per rule).

Deliberately not emulated:

- AWS's managed rule groups (AWSManagedRulesCommonRuleSet, AWSManagedRulesKnownBadInputsRuleSet):
  their signatures are AWS's and unpublished, and a local copy would pass or block differently;
- WAF's own timing: it checks rates every few seconds and "applies rate limiting near the limit",
  not exactly; locally a request over the limit is blocked at once, the exact count;
- sampled requests and logging.
"""
