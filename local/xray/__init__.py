"""Stands in for AWS X-Ray: the daemon the functions send spans to, and traces as the console shows them.

- `daemon.py`: a UDP endpoint on loopback for segment documents, reached through
  `AWS_XRAY_DAEMON_ADDRESS`, kept by trace in memory and appended to `logs/traces.log`;
- `traces.py`: recent traces, and one trace as a waterfall that follows span links from a request to
  the audit consumer's work;
- `trace_header.py`: the `X-Amzn-Trace-Id` API Gateway starts or continues for each request.

Deliberately not emulated (decision 0009):

- the function's own segment, which Lambda writes in AWS: spans whose parent is not sent hang at
  the root of the waterfall;
- sampling rules: every request is sampled (unless its caller's trace header says `Sampled=0`), where
  API Gateway applies the account's rules;
- the service map, groups, insights and trace retention beyond the newest 5,000 traces.
"""
