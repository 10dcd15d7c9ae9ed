"""Each booking's one reminder schedule against in-process moto (adapters/notification_store.py,
decision 0031): only a newer version replaces the plan, so events of one booking arriving in any
order leave exactly the latest version's schedule; a drop deletes it; a schedule that already fired
and deleted itself is no error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from local.account import ACCOUNT_ID, REGION
from services.booking.adapters.notification_store import (
    DynamoDBNotifications,
    ScheduledOptIns,
    ScheduledReminders,
    reminder_name,
)
from services.common import keys
from services.common.dynamodb import from_item
from tests.integration.test_claim_properties import TABLE

GROUP = "appointments-inproc-reminders"


def reminders(inproc: Any) -> tuple[ScheduledReminders, Any]:
    scheduler = boto3.client("scheduler", region_name=REGION)
    if GROUP not in [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]:
        scheduler.create_schedule_group(Name=GROUP)
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/reminders"
    target = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:appointments-inproc-notifications"
    return ScheduledReminders(inproc, TABLE, scheduler, GROUP, role, target), scheduler


def schedules(scheduler: Any) -> list[str]:
    return sorted(s["Name"] for s in scheduler.list_schedules(GroupName=GROUP)["Schedules"])


def test_events_in_any_order_leave_the_latest_versions_schedule_alone(inproc: Any) -> None:
    planner, scheduler = reminders(inproc)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    booking = "bkg_" + "1" * 48
    planner.plan(booking, 2, soon + timedelta(days=1))  # the move's event first
    planner.plan(booking, 1, soon)  # then the creation's: too old, changes nothing
    assert schedules(scheduler) == [reminder_name(booking, 2)]
    made = scheduler.get_schedule(GroupName=GROUP, Name=reminder_name(booking, 2))
    assert made["ScheduleExpression"] == f"at({soon + timedelta(days=1):%Y-%m-%dT%H:%M:%S})"
    assert made["ActionAfterCompletion"] == "DELETE" and made["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    planner.plan(booking, 2, soon + timedelta(days=1))  # the move's event again: one schedule still
    assert schedules(scheduler) == [reminder_name(booking, 2)]
    plan = from_item(inproc.get_item(TableName=TABLE, Key=keys.reminder_plan_key(booking))["Item"])
    assert plan["version"] == 2 and plan["scheduleName"] == reminder_name(booking, 2) and plan["expiresAt"] > 0


def test_a_drop_deletes_the_schedule_and_a_schedule_gone_already_is_no_error(inproc: Any) -> None:
    planner, scheduler = reminders(inproc)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    cancelled, fired = "bkg_" + "2" * 48, "bkg_" + "3" * 48
    planner.plan(cancelled, 1, soon)
    planner.plan(fired, 1, soon)
    planner.plan(cancelled, 2, None)  # cancelled: no reminder
    assert reminder_name(cancelled, 1) not in schedules(scheduler)
    scheduler.delete_schedule(GroupName=GROUP, Name=reminder_name(fired, 1))  # it fired and deleted itself
    planner.plan(fired, 2, None)  # its booking then ended: nothing to delete, and no error
    assert reminder_name(fired, 1) not in schedules(scheduler)


def test_a_customers_upcoming_confirmed_bookings_are_found_across_pages_and_nobody_elses(inproc: Any) -> None:
    """What an opt-in plans from (GSI2, `CUSTOMER#<sub>`): the customer's confirmed bookings that start
    after now, every page; not the past, not pending or cancelled ones, not another customer's."""
    now = datetime.now(UTC).replace(microsecond=0)
    wanted: list[str] = []
    rows = [("upcoming", now + timedelta(days=1 + n), "CONFIRMED", "opter") for n in range(30)]
    rows += [
        ("past", now - timedelta(hours=1), "CONFIRMED", "opter"),
        ("pending", now + timedelta(days=3), "PENDING", "opter"),
        ("cancelled", now + timedelta(days=4), "CANCELLED", "opter"),
        ("theirs", now + timedelta(days=5), "CONFIRMED", "someone-else"),
    ]
    for n, (kind, start, status, customer) in enumerate(rows):
        booking_id = f"bkg_{n:048d}"
        wanted += [booking_id] if kind == "upcoming" else []
        inproc.put_item(
            TableName=TABLE,
            Item={
                **keys.booking_key(booking_id),
                "bookingId": {"S": booking_id},
                "status": {"S": status},
                "notes": {"S": "x" * 50_000},  # 50 KB each: the Query answers in pages of 1 MB
                "GSI2PK": {"S": keys.customer_bookings_partition(customer)},
                "GSI2SK": {"S": f"{start:%Y-%m-%dT%H:%M:%SZ}#{booking_id}"},
            },
        )
    pages: list[int] = []
    inproc.meta.events.register("after-call.dynamodb.Query", lambda **_: pages.append(1))
    found = DynamoDBNotifications(inproc, TABLE).upcoming("opter", now)
    assert found == wanted and len(pages) >= 2  # in start order, every page


def test_an_opt_in_asks_once_a_minute_for_the_planning_two_minutes_ahead(inproc: Any) -> None:
    _, scheduler = reminders(inproc)
    at = datetime(2030, 1, 1, 9, 0, 40, tzinfo=UTC)
    target = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:appointments-inproc-notifications"
    opt_ins = ScheduledOptIns(scheduler, GROUP, f"arn:aws:iam::{ACCOUNT_ID}:role/reminders", target, lambda: at)
    before = set(schedules(scheduler))
    opt_ins.ask_to_plan("opter")
    opt_ins.ask_to_plan("opter")  # said twice in a minute: asked once
    (made,) = set(schedules(scheduler)) - before
    assert made.startswith("opted-in-") and len(made) <= 64
    described = scheduler.get_schedule(GroupName=GROUP, Name=made)
    assert described["ScheduleExpression"] == "at(2030-01-01T09:02:00)"  # past the next whole minute
    assert json.loads(described["Target"]["Input"]) == {"optedIn": {"customerId": "opter"}}
    assert described["Target"]["Arn"] == target and described["ActionAfterCompletion"] == "DELETE"
