"""Stands in for CloudWatch: logs, Logs Insights, metrics, metric math, alarms and the dashboard.

- `logs.py`: each function's log group (a file and a buffer of recent lines) and a line as an event;
- `logs_insights.py` and `logs_insights_syntax.py`: the Logs Insights queries the dashboard and the
  runbooks use, run over the local log groups;
- `metric_store.py`: the metrics CloudWatch would hold: EMF lines, Lambda's, API Gateway's,
  DynamoDB's (from the functions' client spans and the emulator's counts) and SQS's;
- `metric_math.py`: statistics, metric-math expressions and alarm rules;
- `alarms.py`: every alarm of the templates, evaluated every 10 s, with state history;
- `dashboard.py`: the dashboard body CloudFormation receives, each widget answered from local data;
- `samplers.py`: what SQS and DynamoDB publish on their own (queue depth, throttles, consumed
  capacity), sampled before each alarm evaluation.

Deliberately not emulated (decision 0011):

- alarm actions: a state change is written to `logs/alarms.log` as the SNS message, and nothing is
  delivered;
- retention, subscription filters, metric filters and anomaly detection;
- Logs Insights beyond the commands the project's queries use: anything else raises `QueryError`
  rather than answer wrongly;
- durability: a day of datapoints kept in memory, log files under `.local/logs/`.
"""
