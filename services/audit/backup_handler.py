"""The backup function (decision 0032): once an hour, from EventBridge Scheduler, `{"backup": "hourly"}`.

Each run, for both tables (the shared one and the audit trail's):
- starts the day's export to the backup bucket when none of today's (UTC) is done or running, so the
  first run of each day exports; under a token of the table, the day and its six hours, so a failed
  export is tried again in the next six hours and no more than four run a day;
- measures: `BackupAge`, the seconds since the newest completed export of the table whose newest is
  oldest (a table never exported counts from its creation), which the `backup-age` alarm holds under
  26 hours; `BackupExportFailed`, the tables whose export DynamoDB refused this hour or whose newest
  export failed: counted every hour until an export succeeds, so the alarm sees two failing hours.

Everything it does is in its log line: the exports it started, their state, the age.
"""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used
# isort: on

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from services.audit.adapters.dynamodb_exports import TableExports
from services.audit.domain.backups import ExportState, client_token, due_today, freshness
from services.audit.settings import BackupSettings
from services.common.aws import dynamodb_client
from services.common.clock import utc_now
from services.common.observability import Metric, count, logger, observed, seconds
from services.common.settings import load_settings


@cache
def settings() -> BackupSettings:
    return load_settings(BackupSettings)


@cache
def exports() -> TableExports:
    return TableExports(dynamodb_client(), settings().backup_bucket_name)


def hourly() -> dict[str, Any]:
    now = utc_now()
    tables = (settings().table_arn, settings().audit_table_arn)
    seen: dict[str, ExportState] = {}
    started, refused = [], 0
    for table_arn in tables:
        recent = exports().recent(table_arn)
        if due_today(recent, now.date()):
            token = client_token(table_arn.rsplit("/", 1)[-1], now.date(), now.hour)
            try:
                export = exports().start(table_arn, token)  # this six hours' export: new, or as it stands
            except ClientError as error:  # e.g. point-in-time recovery turned off: no export at all
                refused += 1
                logger.error("export refused", tableArn=table_arn, error=str(error))
            else:
                started.append(f"{export.arn} ({export.status})")
                recent = [export, *recent]
        seen |= {export.arn: export for export in recent}
    created = {table_arn: exports().created(table_arn) for table_arn in tables}
    measured = freshness(created, seen.values(), now)
    seconds(Metric.BACKUP_AGE, measured.age.total_seconds())
    count(Metric.BACKUP_EXPORT_FAILED, refused + len(measured.failed))
    log = logger.warning if measured.overdue or refused or measured.failed else logger.info
    log(
        "backup",
        started=started,
        ageSeconds=round(measured.age.total_seconds()),
        stalestTable=measured.stalest_table,
        failed=[f"{e.arn}: {e.failure}" for e in measured.failed],
        refused=refused,
    )
    return {"started": started, "ageSeconds": round(measured.age.total_seconds()), "failed": len(measured.failed)}


@observed()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("backup") != "hourly":
        raise ValueError(f"not a backup schedule's input: {sorted(event)}")
    return hourly()


init_gc.done()
