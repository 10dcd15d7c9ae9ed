"""`make backup` and `make backup-drill` (decision 0032): an export now, and a restore that proves one.

    python -m services.audit.backup export --local-stack http://127.0.0.1:3000   # the stack `make run` runs
    python -m services.audit.backup drill --local-stack http://127.0.0.1:3000
    python -m services.audit.backup drill --stage dev [--region eu-west-1] [--export ARN --export ARN]

The drill, step by step, each timed:
1. export: both tables exported now (or the exports named with `--export`, e.g. last night's);
2. files: each export's data files against its manifests (MD5 and item count of every file, the total);
3. restore: each export imported into a new table (`<table>-drill-<time>`) with ImportTable, as a
   recovery would, every item accounted for (imported = exported, no errors); and each table restored
   by point-in-time recovery to its export's time (`<table>-pitr-<time>`): the truth to compare with,
   which needs nothing of the export;
4. items: each restore against the truth, every item field by field (both are the table at one
   moment, so nothing is excused), and the counts per entity type against the export's;
5. chains: every audit hash chain of the restored trail verified against the archive (as
   `make audit-verify` does for the live one), up to the export's time;
then the drill's tables are dropped (`--keep` keeps them). It prints one line with what was checked
and how long each step took, then each problem on a line of its own; exit 1 when there is one.
Runs with the caller's credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError
from msgspec import Struct, field

from services.audit.adapters.dynamodb_exports import BackupError, ExportFiles, Restores, TableExports, state_of
from services.audit.adapters.dynamodb_trail import DynamoDBAuditReader
from services.audit.adapters.s3_archive import S3Archive
from services.audit.domain.backups import compare, counts_by_type, file_problems
from services.audit.domain.chain import ArchiveObject, verify
from services.audit.verify import local_stack_clients, local_stack_status
from services.common.clock import iso_utc

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


class Target(Struct, frozen=True):
    """A stage's tables and buckets, and how to reach them."""

    table: str
    audit_table: str
    backup_bucket: str
    audit_bucket: str
    client_options: dict[str, Any]
    poll_seconds: float  # how often an export or import is asked about

    def clients(self) -> tuple[DynamoDBClient, S3Client]:
        return boto3.client("dynamodb", **self.client_options), boto3.client("s3", **self.client_options)


def local_target(url: str) -> Target:
    status = local_stack_status(url)
    options = local_stack_clients(status)
    return Target(status["table"], status["auditTable"], status["backupBucket"], status["auditBucket"], options, 0.2)


def stage_target(stage: str, region: str | None) -> Target:
    session = boto3.session.Session(region_name=region or None)
    account = session.client("sts").get_caller_identity()["Account"]
    where = session.region_name
    return Target(
        f"appointments-{stage}",
        f"appointments-{stage}-audit",
        f"appointments-bak-{stage}-{account}-{where}",
        f"appointments-audit-{stage}-{account}-{where}",
        {"region_name": where},
        15.0,
    )


def table_arn(dynamodb: DynamoDBClient, name: str) -> str:
    return str(dynamodb.describe_table(TableName=name)["Table"]["TableArn"])


def export_now(target: Target, timeout: float) -> list[dict[str, Any]]:
    """Both tables exported now, under a token of this moment (not the day's: an extra export)."""
    dynamodb, _ = target.clients()
    exports = TableExports(dynamodb, target.backup_bucket)
    now = datetime.now(UTC)
    started = [
        exports.start(table_arn(dynamodb, name), f"manual-{name}-{now:%Y%m%dT%H%M%S%f}")
        for name in (target.table, target.audit_table)
    ]
    return [exports.wait(export.arn, timeout, target.poll_seconds) for export in started]


class Drill(Struct):
    steps: list[tuple[str, float, str]] = field(default_factory=list)  # name, seconds, what was checked
    problems: list[str] = field(default_factory=list)

    def step(self, name: str, work: Callable[[], str]) -> None:
        began = time.perf_counter()
        checked = work()
        self.steps.append((name, time.perf_counter() - began, checked))

    def line(self) -> str:
        verdict = "OK" if not self.problems else f"FAILED ({len(self.problems)} problems)"
        done = " · ".join(f"{name} {seconds:.1f} s ({checked})" for name, seconds, checked in self.steps)
        total = sum(seconds for _, seconds, _ in self.steps)
        return f"backup drill: {verdict} · {done} · {total:.1f} s in all"


def drill(
    target: Target,
    export_arns: list[str],
    timeout: float,
    settle: timedelta,
    keep: bool = False,
) -> Drill:
    dynamodb, s3 = target.clients()
    exports = TableExports(dynamodb, target.backup_bucket)
    restores = Restores(dynamodb)
    names = (target.table, target.audit_table)
    arns = {name: table_arn(dynamodb, name) for name in names}
    described: dict[str, dict[str, Any]] = {}
    made: list[str] = []  # the tables this drill created, dropped at the end
    result = Drill()

    def export() -> str:
        if export_arns:
            for arn in export_arns:
                description = exports.describe(arn)
                name = next((n for n, a in arns.items() if a == description["TableArn"]), None)
                if name is None:
                    raise BackupError(f"{arn} is no export of {' or '.join(names)}")
                described[name] = description
            if set(described) != set(names):
                raise BackupError(f"--export names no export of {', '.join(sorted(set(names) - set(described)))}")
        else:  # both started, then both waited for: the two tables about one moment apart
            # Both at one whole second that point-in-time recovery can restore both tables to (its latest,
            # a few minutes behind now on AWS): each copy of the drill is of that very second.
            windows = [restores.restorable(name) for name in names]
            if any(window is None for window in windows):
                raise BackupError(f"point-in-time recovery is off on {' or '.join(names)}: nothing to compare with")
            stamp = min(window[1] for window in windows if window is not None).replace(microsecond=0)
            for name in names:
                token = f"drill-{name}-{stamp:%Y%m%dT%H%M%S}"
                described[name] = {"ExportArn": exports.start(arns[name], token, at=stamp).arn}
        for name in names:
            described[name] = exports.wait(str(described[name]["ExportArn"]), timeout, target.poll_seconds)
        items = sum(int(d.get("ItemCount", 0)) for d in described.values())
        return f"{len(names)} tables, {items} items" + (", exports named" if export_arns else "")

    exported: dict[str, Counter[str]] = {}
    exported_items: dict[str, int] = {}
    data_prefixes: dict[str, str] = {}

    def files() -> str:
        count = 0
        for name in names:
            export_files = ExportFiles(s3, target.backup_bucket, str(described[name]["ExportManifest"]))
            summary = export_files.summary()
            listed = list(export_files.files())
            count += len(listed)
            result.problems.extend(f"{name}: {problem}" for problem in file_problems(listed, int(summary["itemCount"])))
            exported[name] = counts_by_type(item for data in listed for item in data.items)
            exported_items[name] = int(summary["itemCount"])
            data_prefixes[name] = export_files.data_prefix
        return f"{count} files against their manifests"

    restored: dict[str, str] = {}  # table → its restore from the export
    truth: dict[str, str] = {}  # table → itself at the export's time, by point-in-time recovery

    def restore() -> str:
        stamp = f"{datetime.now(UTC):%Y%m%d%H%M%S}"
        for name in names:  # before anything is paid for: the truth must be restorable
            window, at = restores.restorable(name), state_of(described[name]).export_time
            if window is None or at is None or at < window[0]:
                since = window[0] if window else None
                raise BackupError(
                    f"{name} cannot be restored to the export's time {at} by point-in-time recovery (restorable "
                    f"since {since}): an export older than the recovery window is drilled by restoring it alone"
                )
        imports = {}
        for name in names:
            imports[name] = restores.start(target.backup_bucket, data_prefixes[name], name, f"{name}-drill-{stamp}")
            restored[name] = f"{name}-drill-{stamp}"
            made.append(restored[name])
        for name in names:
            at = state_of(described[name]).export_time or datetime.now(UTC)
            restores.restore_to(name, f"{name}-pitr-{stamp}", at, timeout, target.poll_seconds)
            truth[name] = f"{name}-pitr-{stamp}"
            made.append(truth[name])
        total = 0
        for name, import_arn in imports.items():
            done = restores.wait(import_arn, timeout, target.poll_seconds)
            imported, errors = int(done.get("ImportedItemCount", 0)), int(done.get("ErrorCount", 0))
            total += imported
            if errors:
                result.problems.append(f"{name}: the import met {errors} items it could not import")
            if imported != exported_items[name]:
                result.problems.append(f"{name}: {imported} items imported, the export counts {exported_items[name]}")
        for name in names:
            restores.wait_active(truth[name], timeout, target.poll_seconds)
        return f"{total} items imported into {len(names)} new tables, and both tables restored to the exports' time"

    def items() -> str:
        equal = 0
        kinds: Counter[str] = Counter()
        for name in names:
            copy, expected = restores.items(restored[name]), restores.items(truth[name])
            by_type = counts_by_type(copy.values())
            kinds += by_type
            for kind in sorted(by_type.keys() | exported[name].keys()):
                if by_type[kind] != exported[name][kind]:
                    result.problems.append(
                        f"{name}: {by_type[kind]} {kind} items restored, the export holds {exported[name][kind]}"
                    )
            compared = compare(expected, copy)
            result.problems.extend(f"{name}: {problem}" for problem in compared.problems)
            equal += compared.equal
        per_type = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        return f"{equal} equal to the table at the export's time; {per_type}"

    def chains() -> str:
        export_time = state_of(described[target.audit_table]).export_time or datetime.now(UTC)
        cutoff = iso_utc(export_time - settle)
        reader = DynamoDBAuditReader(dynamodb, restored[target.audit_table])
        archive = _up_to(S3Archive(s3, target.audit_bucket).objects(), cutoff)
        verified = verify(archive, reader.all_history(), cutoff, reader.chain_heads())
        result.problems.extend(f"audit chain: {found}" for found in sorted(verified.breaks))
        return f"{verified.history_items} events in {verified.entities} chains, {verified.pending} after the cutoff"

    try:
        for name, work in (("export", export), ("files", files), ("restore", restore), ("items", items)):
            result.step(name, work)
        result.step("chains", chains)
    except (BackupError, ClientError) as error:
        result.problems.append(f"the drill stopped: {error}")
    finally:
        if not keep:
            for table in made:
                try:
                    restores.drop(table)
                except Exception as error:  # reported; never hides the drill's own result
                    result.problems.append(f"the drill's table {table} was not dropped: {error}")
    return result


def _up_to(objects: Iterator[ArchiveObject], cutoff: str) -> Iterator[ArchiveObject]:
    """The archive as it stood at the export: objects whose events happened before `cutoff` (and every
    object that cannot be read, which the verifier reports)."""
    for archived in objects:
        try:
            times = [str(json.loads(line)["at"]) for line in archived.lines]
        except (ValueError, KeyError, TypeError):
            yield archived
            continue
        if archived.deleted or not times or min(times) < cutoff:
            yield archived


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["export", "drill"])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local-stack", metavar="URL", help="the local stack's URL (make run)")
    where.add_argument("--stage", help="a deployed stage (the caller's AWS credentials)")
    parser.add_argument("--region", default="", help="the stage's region (default: the environment's)")
    parser.add_argument("--export", action="append", default=[], help="drill these exports (one per table)")
    parser.add_argument("--keep", action="store_true", help="keep the restored tables")
    parser.add_argument("--timeout-seconds", type=float, default=7200, help="the longest an export or import may take")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=300,
        help="audit events this close before the export may be missing from it or the archive (default 300)",
    )
    arguments = parser.parse_args(argv)
    target = (
        local_target(arguments.local_stack)
        if arguments.local_stack
        else stage_target(arguments.stage, arguments.region)
    )
    if arguments.action == "export":
        began = time.perf_counter()
        done = export_now(target, arguments.timeout_seconds)
        listed = ", ".join(f"{d['TableArn'].rsplit('/', 1)[-1]} ({d.get('ItemCount', 0)} items)" for d in done)
        print(
            f"backup: exported {listed} to s3://{target.backup_bucket}/exports/ in {time.perf_counter() - began:.1f} s"
        )
        for description in done:
            print(f"  {description['ExportArn']}")
        return 0
    result = drill(
        target, arguments.export, arguments.timeout_seconds, timedelta(seconds=arguments.settle_seconds), arguments.keep
    )
    print(result.line())
    for problem in result.problems:
        print(f"  - {problem}")
    return 0 if not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
