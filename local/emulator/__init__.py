"""Stands in for DynamoDB (with DynamoDB Streams), S3 and SQS: moto's server, on loopback.

One process (`server.py`, `python -m local.emulator`) serves every data API the functions call,
because moto keeps every service in one backend and its backends are not thread-safe: each request
runs under one lock. Around moto, in the order a request meets them:

- `faults.py`: throttles, errors and delays on demand, failing archive writes, stale reads (`make faults`);
- `consistency.py`: eventually consistent reads that answer data up to `staleReadsMs` old;
- `capacity.py`: DynamoDB's capacity units, computed from item sizes as DynamoDB bills them;
- `transactions.py`: `TransactWriteItems` rewritten to cost O(transaction), not O(table), with
  DynamoDB's all-or-nothing semantics (decision 0002);
- `overheads.py`: moto's server costs that do nothing for the answer, removed: items are answered as
  moto keeps them (their wire form), not walked member by member; moto's folder is listed once;
- `refusals.py`: what DynamoDB refuses and moto does not (a query's start key outside its key
  condition);
- `time_to_live.py`: DynamoDB's TTL, which moto never runs: expired items deleted within 10 s, with
  DynamoDB's own `REMOVE` stream records;
- `clock.py`: the process's time, moved with the local stack's clock (`local/clock.py`).

Resources are never described here: `local/cloudformation/` creates them from the templates.

Deliberately not emulated:

- durability: data lives in the process's memory and is gone when the stack stops;
- DynamoDB's throttling and partitions: on-demand capacity never refuses locally, unless a fault says
  so (`dynamodbThrottle`);
- time to live's timing: DynamoDB deletes an expired item within days, the emulator within 10 s;
  code must read an item's expiry itself, as the idempotency records do, and not the deletion;
- eventual consistency, unless asked: every read sees the latest write, but with the `staleReadsMs`
  fault on (`consistency.py`) eventually consistent reads answer the oldest data DynamoDB allows;
- S3 beyond the bucket settings `local/cloudformation/provision.py` applies (versioning, object lock,
  encryption, public access block): lifecycle rules, replication and notifications are AWS's only.
"""
