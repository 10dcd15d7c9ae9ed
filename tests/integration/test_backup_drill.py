"""Backups through the local stack (decision 0032): `make backup` and `make backup-drill` against a few
hundred bookings, their providers' schedules and services, and the trail they made; a corrupted export
(one item altered, one removed) fails the drill, naming both; the hourly schedule exports each table
once a day and measures the newest export's age. A stack of its own: its clock moves."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from local.cloudwatch.metric_store import MetricId
from local.stack import LocalStack, StackConfig, aws_client
from services.audit import backup
from services.audit.domain.backups import client_token
from tests.integration.conftest import call, eventually, token
from tests.integration.test_booking_api import WEEKDAYS, book, future_day, make_provider, slots

CLINICS, PER_DAY, DAYS = 4, 20, 3  # 240 bookings: 20 a day on each of 3 days, at 4 clinics


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(StackConfig(port=0, state_dir=tmp_path_factory.mktemp("backups"), echo=None, seed=False))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def bookings(stack: LocalStack) -> list[str]:
    """240 bookings at 4 clinics (each with its schedule and two services), 30 of them cancelled and
    30 moved, all in the trail; then the clock moves 10 minutes, so that all of it lies before the
    drill's cutoff (5 minutes before its export)."""
    assert stack.event_source_mapping is not None
    weekly = {day: [{"start": "07:00", "end": "22:00"}] for day in WEEKDAYS}  # 30 half-hour slots a day
    services = [{"name": n, "durationMinutes": 30, "slotStepMinutes": 30} for n in ("Check-up", "Follow-up")]
    clinics = [make_provider(stack, f"bak-owner-{n}", f"Backup Clinic {n}", weekly, services) for n in range(CLINICS)]
    days = [future_day(2 + week) for week in range(DAYS)]
    offered = {
        (pid, day): [slot["start"] for slot in slots(stack, pid, sids[0], day)] for pid, sids in clinics for day in days
    }
    spare = [slot["start"] for slot in slots(stack, clinics[0][0], clinics[0][1][0], future_day(2 + DAYS))]
    customers = [token(stack, f"bak-customer-{n}", ["customers"]) for n in range(24)]
    wanted = [(n, pid, sids[n % 2], day) for pid, sids in clinics for day in days for n in range(PER_DAY)]

    def book_one(job: tuple[int, str, str, Any]) -> str:
        n, pid, sid, day = job
        status, _, created = book(stack, customers[n % 24], pid, sid, offered[(pid, day)][n])
        assert status == 201, created
        return str(created["bookingId"])

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(book_one, wanted))
    for n, booking_id in enumerate(made[:60]):
        who = customers[wanted[n][0] % 24]
        if n < 30:
            status, _, body = call(stack, "POST", f"/bookings/{booking_id}/cancel", token=who, body={})
        else:
            later = spare[n - 30]  # the first 60 are the first clinic's: 30 of them move to a day of their own
            status, _, body = call(
                stack, "POST", f"/bookings/{booking_id}/reschedule", token=who, body={"start": later}
            )
        assert status == 200, body
    assert stack.event_source_mapping.wait_caught_up()
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 600})[0] == 200
    assert stack.event_source_mapping.wait_caught_up()
    return made


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = backup.main(list(arguments))
    return code, capsys.readouterr().out.splitlines()


def test_the_hourly_schedule_exports_each_table_once_a_day_and_measures_the_newest_exports_age(
    stack: LocalStack, bookings: list[str]
) -> None:
    assert stack.emulator is not None and stack.data is not None and stack.metrics is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    tables = {
        name: dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
        for name in ("appointments-local", "appointments-local-audit")
    }

    def daily(table: str) -> list[dict[str, Any]]:
        """The table's exports the schedule made (the day's token), not the drill's or make backup's."""
        arns = [e["ExportArn"] for e in dynamodb.list_exports(TableArn=tables[table])["ExportSummaries"]]
        described = [dynamodb.describe_export(ExportArn=arn)["ExportDescription"] for arn in arns]
        day = datetime.fromtimestamp(stack.clock.now(), UTC).date()
        tokens = {client_token(table, day, hour) for hour in range(0, 24, 6)}  # the day's, by six hours
        return [d for d in described if d.get("ClientToken") in tokens]

    fired = stack.status()["schedules"]["fired"].get("appointments-local-backup", 0)
    # When an hour passes, the schedule runs the backup function: the day's export of each table
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 3660})[0] == 200
    assert eventually(lambda: all(daily(table) for table in tables), seconds=30)
    for table in tables:
        (export,) = daily(table)
        assert export["ExportStatus"] == "COMPLETED" and export["S3Prefix"] == f"exports/{table}"
    # and it measured the age: under the 26 hours the alarm allows
    age = MetricId.of("Appointments", "BackupAge", {"service": "backup", "stage": "local"})
    now = stack.clock.now()
    values = eventually(
        lambda: [v for _, v in stack.metrics.datapoints(age, "Maximum", 60, now - 120, now + 60) if v is not None]
    )
    assert values and 0 <= values[-1] < 26 * 3600, values
    assert stack.status()["schedules"]["fired"]["appointments-local-backup"] == fired + 1
    assert stack.alarms is not None and stack.alarms.evaluate()["appointments-local-backup-age"] == "OK"


def test_the_drill_restores_both_tables_and_every_check_holds(
    stack: LocalStack, bookings: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.emulator is not None and stack.data is not None
    code, lines = run(capsys, "drill", "--local-stack", stack.url)
    assert code == 0, "\n".join(lines)
    (line,) = lines
    # one line: every step, what it checked and how long it took
    steps = re.findall(r"(export|files|restore|items|chains) (\d+\.\d) s \(([^)]*)\)", line)
    assert [name for name, _, _ in steps] == ["export", "files", "restore", "items", "chains"], line
    assert line.startswith("backup drill: OK") and line.endswith(" s in all"), line
    checked = {name: what for name, _, what in steps}
    assert re.fullmatch(r"\d+ files against their manifests", checked["files"]), line
    assert int(checked["files"].split()[0]) >= 3  # both tables, 250 items a file: the table alone has more
    restored = int(checked["restore"].split()[0])
    assert checked["restore"].endswith("both tables restored to the exports' time"), line
    equal = int(checked["items"].split()[0])
    assert equal == restored > len(bookings), line  # every item imported equals the table at the export's time
    assert f"Booking {len(bookings)}" in checked["items"] and "Schedule 4" in checked["items"], line
    assert "Service 8" in checked["items"] and "AuditRecord " in checked["items"], line
    events = int(checked["chains"].split()[0])
    assert events >= len(bookings) + 60 + 4 * 4, line  # 300 booking changes, each clinic's 4 changes
    assert checked["chains"].endswith(" 0 after the cutoff"), line
    # and the drill's tables are gone
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    assert not [name for name in dynamodb.list_tables()["TableNames"] if "-drill-" in name or "-pitr-" in name]


def test_a_corrupted_export_fails_the_drill_and_names_the_altered_and_the_removed_item(
    stack: LocalStack, bookings: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.emulator is not None and stack.data is not None
    # Given last night's exports (`make backup`)
    code, lines = run(capsys, "export", "--local-stack", stack.url)
    assert code == 0 and lines[0].startswith("backup: exported appointments-local ("), lines
    arns = [line.strip() for line in lines[1:]]
    assert len(arns) == 2 and all("/export/" in arn for arn in arns), lines
    dynamodb, s3 = aws_client("dynamodb", stack.emulator.endpoint), aws_client("s3", stack.emulator.endpoint)
    bucket = stack.data.backup_bucket_name
    (table_export,) = [arn for arn in arns if arn.split("/export/")[0].endswith("/appointments-local")]
    manifest = dynamodb.describe_export(ExportArn=table_export)["ExportDescription"]["ExportManifest"]
    assert manifest.startswith("exports/appointments-local/AWSDynamoDB/"), manifest
    # the exports are locked and encrypted, as the bucket's defaults make every object
    head = s3.head_object(Bucket=bucket, Key=manifest)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ServerSideEncryption"] == "AES256"
    # When someone alters one booking in a data file and removes another
    summary = json.loads(s3.get_object(Bucket=bucket, Key=manifest)["Body"].read())
    listed = s3.get_object(Bucket=bucket, Key=summary["manifestFilesS3Key"])["Body"].read().decode().splitlines()
    altered = removed = None
    for entry in map(json.loads, listed):
        items = gzip.decompress(s3.get_object(Bucket=bucket, Key=entry["dataFileS3Key"])["Body"].read()).splitlines()
        found = [n for n, line in enumerate(items) if json.loads(line)["Item"]["entityType"]["S"] == "Booking"]
        if len(found) < 2:
            continue
        first, second = json.loads(items[found[0]]), json.loads(items[found[1]])
        first["Item"]["status"] = {"S": "CANCELLED" if first["Item"]["status"]["S"] != "CANCELLED" else "CONFIRMED"}
        altered, removed = first["Item"]["PK"]["S"], second["Item"]["PK"]["S"]
        items[found[0]] = json.dumps(first).encode()
        del items[found[1]]
        s3.put_object(
            Bucket=bucket,
            Key=entry["dataFileS3Key"],
            Body=gzip.compress(b"\n".join(items) + b"\n"),
            ChecksumAlgorithm="SHA256",  # object lock requires one
        )
        corrupted = entry["dataFileS3Key"]
        break
    assert altered and removed
    # Then the drill of those exports fails, and names both items and the file
    code, lines = run(capsys, "drill", "--local-stack", stack.url, "--export", arns[0], "--export", arns[1])
    assert code == 1, "\n".join(lines)
    assert lines[0].startswith("backup drill: FAILED ("), lines[0]
    problems = "\n".join(lines[1:])
    assert f"appointments-local: altered: {altered}/BOOKING (status)" in problems, problems
    assert f"appointments-local: missing from the restore: {removed}/BOOKING" in problems, problems
    assert f"export file {corrupted}: its MD5 is not the manifest's" in problems, problems
    assert f"export file {corrupted}: {len(items)} items, the manifest lists {len(items) + 1}" in problems, problems
    # and nothing else: the audit table's export is intact, its chains too
    assert "appointments-local-audit" not in problems and "audit chain" not in problems, problems
    assert not [name for name in dynamodb.list_tables()["TableNames"] if "-drill-" in name or "-pitr-" in name]


def test_refused_exports_are_counted_every_hour_and_alarm_in_the_second(stack: LocalStack, bookings: list[str]) -> None:
    """Point-in-time recovery turned off on the audit table: on a new day each run's export of it is
    refused and counted, and the second complete hour of it alarms."""
    assert stack.emulator is not None and stack.metrics is not None and stack.alarms is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    dynamodb.update_continuous_backups(
        TableName="appointments-local-audit", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    functions = aws_client("lambda", stack.url)  # the local stack's Lambda Invoke API
    failed = MetricId.of("Appointments", "BackupExportFailed", {"service": "backup", "stage": "local"})
    fired = stack.status()["schedules"]["fired"]["appointments-local-backup"]
    hour = 3600

    def move_to(moment: float) -> None:
        assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": moment - stack.clock.now()})[0] == 200

    def run() -> dict[str, Any]:
        """One run now, as the schedule's (which also fires as the clock moves: those count the same)."""
        answer = functions.invoke(FunctionName="appointments-local-backup", Payload=json.dumps({"backup": "hourly"}))
        assert "FunctionError" not in answer
        result: dict[str, Any] = json.loads(answer["Payload"].read())
        return result

    metrics = stack.metrics

    def counted(start: float, end: float) -> list[float]:
        return [v for _, v in metrics.datapoints(failed, "Maximum", hour, start, end) if v is not None]

    # 25 hours on (another UTC day, whatever the hour), after the schedule's own run of it
    move_to(stack.clock.now() + 25 * hour)
    assert eventually(lambda: stack.status()["schedules"]["fired"]["appointments-local-backup"] > fired, 30)
    this_hour = stack.clock.now() // hour * hour
    first = run()
    assert first["failed"] == 0 and [s for s in first["started"] if "appointments-local-audit" in s] == []
    move_to(this_hour + hour + 5)
    run()
    assert counted(this_hour, this_hour + 2 * hour) == [1.0, 1.0]  # each hour, until an export works
    assert stack.alarms.evaluate()["appointments-local-backup-age"] == "OK"  # one complete hour: not yet
    move_to(this_hour + 2 * hour + 5)
    assert stack.alarms.evaluate()["appointments-local-backup-age"] == "ALARM"
