"""Calendly's deliveries through the local stack (decision 0030), signed here by hand with `hmac`
as Calendly signs them, on the stack's clock.

A genuine `invitee.created` makes its time busy for the provider (explain: `EXTERNAL`) and
`invitee.canceled` frees it; a reschedule's cancel and create change both times, in either order; a
redelivery changes nothing; a forged, stale or replayed delivery is 401 and changes nothing; other
events are accepted and ignored. A Calendly block and a booking of ours racing for one time never
both hold it, and when ours held it first the block is a recorded conflict. Every change is in the
trail with actor `calendly`; the signing key is never shown back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from local.stack import LocalStack
from tests.integration.conftest import call, eventually, token

pytestmark = pytest.mark.slow

OWNER = "calendly-owner"
SIGNING_KEY = "q8Yt2vLr0_calendly-signing-key-for-tests"
EVERY_DAY = {day: [{"start": "08:00", "end": "18:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, str]:
    owner = token(stack, OWNER, ["providers"])
    status, _, provider = call(
        stack, "POST", "/providers", token=owner, body={"name": "Calendly Clinic", "timeZone": "UTC"}
    )
    assert status == 201, provider
    pid = provider["providerId"]
    assert call(stack, "PUT", f"/providers/{pid}/schedule", token=owner, body={"weekly": EVERY_DAY})[0] == 200
    body = {"name": "Visit", "durationMinutes": 30, "slotStepMinutes": 30, "minNoticeMinutes": 0}
    status, _, service = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)
    assert status == 201, service
    status, headers, connected = call(
        stack, "PUT", f"/providers/{pid}/integrations/calendly", token=owner, body={"signingKey": SIGNING_KEY}
    )
    assert status == 200 and headers.get("Cache-Control") == "no-store", connected
    assert connected["webhookUrl"].endswith(f"/integrations/calendly/{pid}") and SIGNING_KEY not in json.dumps(
        connected
    )
    return pid, service["serviceId"]


def a_day(offset: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=offset)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def envelope(event: str, invitee: str, start: datetime, minutes: int = 30, **payload: Any) -> bytes:
    """A delivery as Calendly sends it: the invitee, its scheduled event, and (not ours to keep) who."""
    scheduled = {
        "uri": f"https://api.calendly.com/scheduled_events/{invitee}-event",
        "name": "Consultation",
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "end_time": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
    }
    body = {
        "event": event,
        "created_at": "2026-11-30T10:00:00.000000Z",
        "created_by": "https://api.calendly.com/users/AAAA",
        "payload": {
            "uri": f"https://api.calendly.com/scheduled_events/{invitee}-event/invitees/{invitee}",
            "email": "someone@example.com",
            "name": "Some One",
            "rescheduled": False,
            "scheduled_event": scheduled,
            **payload,
        },
    }
    return json.dumps(body).encode()


def signed(stack: LocalStack, body: bytes, key: str = SIGNING_KEY, skew: int = 0) -> str:
    """Calendly's header: `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, at the stack's time (+ skew s)."""
    stamp = str(int(stack.clock.now()) + skew)
    digest = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def deliver(stack: LocalStack, pid: str, body: bytes, header: str | None = None) -> tuple[int, Any]:
    headers = {"Calendly-Webhook-Signature": header if header is not None else signed(stack, body)}
    status, _, answer = call(stack, "POST", f"/integrations/calendly/{pid}", raw=body, headers=headers)
    return status, answer


def reasons(stack: LocalStack, pid: str, sid: str, start: datetime) -> list[str]:
    query = f"serviceId={sid}&start={quote(start.isoformat())}"
    status, _, answer = call(
        stack, "GET", f"/providers/{pid}/slots/explain?{query}", token=token(stack, "calendly-looker", ["customers"])
    )
    assert status == 200, answer
    return list(answer["reasons"])


def book(stack: LocalStack, who: str, pid: str, sid: str, start: datetime) -> tuple[int, Any]:
    body = {"providerId": pid, "serviceId": sid, "start": start.isoformat()}
    status, _, answer = call(stack, "POST", "/bookings", token=token(stack, who, ["customers"]), body=body)
    return status, answer


def trail(stack: LocalStack, external_id: str) -> list[Any]:
    admin = token(stack, "calendly-auditor", ["admins"])
    answer = call(stack, "GET", f"/audit/events?entityType=ExternalBlock&entityId={external_id}", token=admin)[2]
    return list(answer["items"])


def test_a_created_invitee_is_busy_a_redelivery_changes_nothing_and_a_cancel_frees_it(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    start = at(a_day(3), 10)
    assert reasons(stack, pid, sid, start) == []
    created = envelope("invitee.created", "inv-one", start, minutes=60)
    status, answer = deliver(stack, pid, created)
    assert status == 200 and answer["status"] == "BUSY" and answer["changed"] is True, answer
    assert reasons(stack, pid, sid, start) == ["EXTERNAL"]
    assert reasons(stack, pid, sid, start + timedelta(minutes=30)) == ["EXTERNAL"]
    assert reasons(stack, pid, sid, start + timedelta(minutes=60)) == []
    assert book(stack, "calendly-late", pid, sid, start + timedelta(minutes=30))[0] == 409

    # Calendly delivers again (it missed our answer): same block, nothing changes.
    status, again = deliver(stack, pid, created)
    assert status == 200 and again["changed"] is False and again["externalId"] == answer["externalId"], again

    status, freed = deliver(stack, pid, envelope("invitee.canceled", "inv-one", start, minutes=60))
    assert status == 200 and freed["status"] == "FREED" and freed["changed"] is True, freed
    assert reasons(stack, pid, sid, start) == []
    assert book(stack, "calendly-after", pid, sid, start)[0] == 201

    # Recorded with actor `calendly`; the invitee's name and e-mail are nowhere in it.
    events = eventually(lambda: len(trail(stack, answer["externalId"])) == 2 and trail(stack, answer["externalId"]))
    assert [(e["action"], e["actor"]) for e in events] == [
        ("EXTERNAL_BLOCKED", "calendly"),
        ("EXTERNAL_FREED", "calendly"),
    ]
    assert "someone@example.com" not in json.dumps(events) and "Some One" not in json.dumps(events)


def test_a_reschedule_frees_the_old_time_and_takes_the_new_in_either_order(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(4)
    for old, new, first in (("res-a-old", "res-a-new", "cancel"), ("res-b-old", "res-b-new", "create")):
        before, after = at(day, 9 if first == "cancel" else 13), at(day, 11 if first == "cancel" else 15)
        assert deliver(stack, pid, envelope("invitee.created", old, before))[1]["status"] == "BUSY"
        old_uri = f"https://api.calendly.com/scheduled_events/{old}-event/invitees/{old}"
        new_uri = f"https://api.calendly.com/scheduled_events/{new}-event/invitees/{new}"
        cancel = envelope("invitee.canceled", old, before, rescheduled=True, new_invitee=new_uri)
        create = envelope("invitee.created", new, after, old_invitee=old_uri)
        for body in (cancel, create) if first == "cancel" else (create, cancel):
            status, answer = deliver(stack, pid, body)
            assert status == 200 and answer["changed"] is True, answer
        assert reasons(stack, pid, sid, before) == [] and reasons(stack, pid, sid, after) == ["EXTERNAL"]


def test_a_cancel_before_its_create_leaves_the_time_free(stack: LocalStack, clinic: tuple[str, str]) -> None:
    pid, sid = clinic
    start = at(a_day(4), 16)
    status, freed = deliver(stack, pid, envelope("invitee.canceled", "inv-early", start))
    assert status == 200 and freed["status"] == "FREED", freed
    status, late = deliver(stack, pid, envelope("invitee.created", "inv-early", start))
    assert status == 200 and late["status"] == "FREED" and late["changed"] is False, late
    assert reasons(stack, pid, sid, start) == []


def test_forged_stale_and_replayed_deliveries_are_refused_and_change_nothing(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    start = at(a_day(5), 10)
    body = envelope("invitee.created", "inv-forged", start)
    refusals = {
        "no header": "",
        "wrong key": signed(stack, body, key="not-the-providers-signing-key"),
        "altered body": signed(stack, envelope("invitee.created", "inv-forged", start + timedelta(hours=1))),
        "four minutes old": signed(stack, body, skew=-240),
        "four minutes ahead": signed(stack, body, skew=240),
        "garbage": "t=abc,v1=zz",
    }
    for why, header in refusals.items():
        status, answer = deliver(stack, pid, body, header)
        assert status == 401 and answer["code"] == "INVALID_SIGNATURE", (why, answer)
    assert reasons(stack, pid, sid, start) == []
    # Two and a half minutes behind is within the tolerance: a clock a little off is fine.
    recorded = signed(stack, body, skew=-150)
    status, answer = deliver(stack, pid, body, recorded)
    assert status == 200 and answer["status"] == "BUSY", answer
    status, answer = deliver(stack, pid, envelope("invitee.canceled", "inv-forged", start))
    assert status == 200 and answer["status"] == "FREED", answer

    # The genuine delivery, recorded and replayed four minutes on, is refused, however valid its signature.
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": 240})[0] == 200
    status, answer = deliver(stack, pid, body, recorded)
    assert status == 401 and answer["code"] == "INVALID_SIGNATURE", answer

    # Another provider's key does not sign for this one; an unconnected provider is 404.
    assert deliver(stack, "prv_" + "0" * 32, body)[0] == 404


def test_other_events_are_accepted_and_ignored_and_bad_payloads_name_the_field(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, _ = clinic
    for event in ("invitee_no_show.created", "routing_form_submission.created", "event_type.updated"):
        body = json.dumps({"event": event, "payload": {"anything": True}}).encode()
        assert deliver(stack, pid, body) == (200, {"status": "IGNORED"})
    broken = json.loads(envelope("invitee.created", "inv-broken", at(a_day(6), 10)))
    broken["payload"]["scheduled_event"]["start_time"] = "tomorrow at ten"
    status, answer = deliver(stack, pid, json.dumps(broken).encode())
    assert status == 400 and answer["errors"][0]["field"] == "body.payload.scheduled_event.start_time", answer


def test_only_the_owner_and_admins_connect_and_the_key_is_never_shown(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, _ = clinic
    path = f"/providers/{pid}/integrations/calendly"
    body = {"signingKey": "another-key-of-sixteen-or-more"}
    assert call(stack, "PUT", path, token=token(stack, "someone-else", ["providers"]), body=body)[0] == 403
    assert call(stack, "PUT", path, token=token(stack, "a-customer", ["customers"]), body=body)[0] == 403
    for bad in ("short", "a key with spaces in it", "é" * 20):
        assert call(stack, "PUT", path, token=token(stack, OWNER, ["providers"]), body={"signingKey": bad})[0] == 400
    assert call(stack, "PUT", path, body=body)[0] == 401
    admin = token(stack, "calendly-admin", ["admins"])
    assert call(stack, "PUT", path, token=admin, body=body)[0] == 200
    # The old key no longer signs; the new one does.
    probe = envelope("invitee_no_show.created", "inv-probe", at(a_day(6), 9))
    assert deliver(stack, pid, probe)[0] == 401
    assert deliver(stack, pid, probe, signed(stack, probe, key=body["signingKey"]))[0] == 200
    assert call(stack, "PUT", path, token=admin, body={"signingKey": SIGNING_KEY})[0] == 200

    other = token(stack, "calendly-other", ["providers"])
    status, _, provider = call(stack, "POST", "/providers", token=other, body={"name": "Unlinked", "timeZone": "UTC"})
    assert status == 201, provider
    unlinked = f"/providers/{provider['providerId']}/integrations/calendly"
    assert call(stack, "PUT", unlinked, token=other, body=body)[0] == 200
    assert call(stack, "DELETE", unlinked, token=other)[0] == 204
    assert call(stack, "DELETE", unlinked, token=other)[0] == 404
    assert deliver(stack, provider["providerId"], probe, signed(stack, probe, key=body["signingKey"]))[0] == 404
    assert call(stack, "PUT", path.replace(pid, "prv_" + "1" * 32), token=admin, body=body)[0] == 404

    def connections() -> list[str]:
        answer = call(stack, "GET", f"/audit/events?entityType=Provider&entityId={provider['providerId']}", token=admin)
        return [e["action"] for e in answer[2]["items"]]

    assert eventually(lambda: connections()[-2:] == ["CALENDLY_CONNECTED", "CALENDLY_DISCONNECTED"]), connections()


def test_a_time_we_booked_first_is_a_recorded_conflict_and_not_a_second_holder(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    start = at(a_day(7), 10)
    status, booked = book(stack, "calendly-first", pid, sid, start)
    assert status == 201, booked
    status, answer = deliver(stack, pid, envelope("invitee.created", "inv-second", start - timedelta(minutes=15)))
    assert status == 200 and answer["status"] == "CONFLICT" and answer["changed"] is True, answer
    # Not in the calendar: our booking alone holds the time, and the quarter before it is still free.
    assert reasons(stack, pid, sid, start) == ["BOOKED"]
    assert reasons(stack, pid, sid, start - timedelta(minutes=30)) == []
    (event,) = eventually(lambda: trail(stack, answer["externalId"]))
    assert (event["action"], event["actor"]) == ("EXTERNAL_CONFLICT", "calendly")
    assert event["changes"]["conflictsWith"]["after"] == [booked["bookingId"]]
    # Its cancel is still taken: the conflict is over.
    canceled = envelope("invitee.canceled", "inv-second", start - timedelta(minutes=15))
    assert deliver(stack, pid, canceled)[1]["status"] == "FREED"


def race(*contenders: Any) -> list[Any]:
    """Each contender's answer, all of them started at one moment."""
    barrier = threading.Barrier(len(contenders))
    answers: list[Any] = [None] * len(contenders)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = contenders[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_a_calendly_block_and_a_racing_booking_never_both_hold_one_time(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    day = a_day(8)
    outcomes: list[tuple[int, str]] = []
    for hour in range(8, 18):
        start = at(day, hour)
        body = envelope("invitee.created", f"inv-race-{hour}", start)
        header = signed(stack, body)
        results = race(
            lambda start=start, hour=hour: book(stack, f"racer-{hour}", pid, sid, start),
            lambda body=body, header=header: deliver(stack, pid, body, header),
        )
        (booking_status, _), (calendly_status, block) = results
        assert calendly_status == 200, block
        # Exactly one holds the time: our booking with their block a conflict, or their block alone.
        assert (booking_status, block["status"]) in {(201, "CONFLICT"), (409, "BUSY")}, (booking_status, block)
        expected = ["BOOKED"] if booking_status == 201 else ["EXTERNAL"]
        assert reasons(stack, pid, sid, start) == expected
        outcomes.append((booking_status, block["status"]))
    assert len(outcomes) == 10
