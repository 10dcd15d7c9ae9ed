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

    # An unconnected provider is 404 (another provider's key: test_a_key_signs_only_for_its_provider…).
    assert deliver(stack, "prv_" + "0" * 32, body)[0] == 404
    # A timestamp of thousands of digits is a 401 like any other, not a failure of ours.
    assert deliver(stack, pid, body, "t=" + "9" * 5000 + ",v1=00")[0] == 401


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


def test_a_time_we_booked_first_is_a_recorded_conflict_and_stays_taken(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    start = at(a_day(7), 10)
    status, booked = book(stack, "calendly-first", pid, sid, start)
    assert status == 201, booked
    # Calendly's 09:45-11:45 overlaps our 10:00-10:30: the provider has two appointments at once.
    body = envelope("invitee.created", "inv-second", start - timedelta(minutes=15), minutes=120)
    status, answer = deliver(stack, pid, body)
    assert status == 200 and answer["status"] == "CONFLICT" and answer["changed"] is True, answer
    # Ours keeps its time, and the rest of Calendly's is taken too: nobody books a third appointment.
    assert reasons(stack, pid, sid, start) == ["BOOKED", "EXTERNAL"]
    for later in (start + timedelta(minutes=30), start + timedelta(minutes=60), start + timedelta(minutes=90)):
        assert book(stack, "calendly-third", pid, sid, later)[0] == 409
    (event,) = eventually(lambda: trail(stack, answer["externalId"]))
    assert (event["action"], event["actor"]) == ("EXTERNAL_CONFLICT", "calendly")
    assert event["changes"]["conflictsWith"]["after"] == [booked["bookingId"]]
    # Its cancel frees Calendly's time; ours stays.
    canceled = envelope("invitee.canceled", "inv-second", start - timedelta(minutes=15), minutes=120)
    assert deliver(stack, pid, canceled)[1]["status"] == "FREED"
    assert reasons(stack, pid, sid, start) == ["BOOKED"]
    assert reasons(stack, pid, sid, start + timedelta(minutes=30)) == []


def test_a_hold_and_a_booking_awaiting_approval_give_way_to_calendly(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    owner = token(stack, OWNER, ["providers"])
    body = {
        "name": "Consult",
        "durationMinutes": 30,
        "slotStepMinutes": 30,
        "minNoticeMinutes": 0,
        "requiresApproval": True,
    }
    status, _, approval = call(stack, "POST", f"/providers/{pid}/services", token=owner, body=body)
    assert status == 201, approval
    day = a_day(9)
    holder = token(stack, "calendly-holder", ["customers"])
    hold_body = {"providerId": pid, "serviceId": sid, "start": at(day, 9).isoformat()}
    status, _, held = call(stack, "POST", "/holds", token=holder, body=hold_body)
    assert status == 201, held
    status, waiting = book(stack, "calendly-waiter", pid, approval["serviceId"], at(day, 10))
    assert status == 201 and waiting["status"] == "PENDING", waiting

    status, answer = deliver(stack, pid, envelope("invitee.created", "inv-evicts", at(day, 9), minutes=90))
    assert status == 200 and answer["status"] == "BUSY", answer
    assert reasons(stack, pid, sid, at(day, 9)) == ["EXTERNAL"] and reasons(stack, pid, sid, at(day, 10)) == [
        "EXTERNAL"
    ]
    # The hold is over: its customer cannot book it.
    booked = {**hold_body, "holdId": held["holdId"]}
    status, _, refused = call(stack, "POST", "/bookings", token=holder, body=booked)
    assert status == 422 and refused["code"] == "HOLD_UNAVAILABLE", refused
    # The booking awaiting approval is declined, saying why; the owner cannot approve it any more.
    waiter = token(stack, "calendly-waiter", ["customers"])
    status, _, now = call(stack, "GET", f"/bookings/{waiting['bookingId']}", token=waiter)
    assert status == 200 and now["status"] == "DECLINED" and "Calendly" in now["declineReason"], now
    assert call(stack, "POST", f"/bookings/{waiting['bookingId']}/approve", token=owner)[0] == 409
    admin = token(stack, "calendly-auditor", ["admins"])

    def hold_trail() -> list[Any]:
        answer = call(stack, "GET", f"/audit/events?entityType=Hold&entityId={held['holdId']}", token=admin)[2]
        return list(answer["items"])

    events = eventually(lambda: len(hold_trail()) == 2 and hold_trail())
    assert [(e["action"], e["actor"]) for e in events] == [
        ("HOLD_CREATED", "calendly-holder"),
        ("HOLD_RELEASED", "calendly"),
    ]


def test_overlapping_invitees_of_a_group_event_are_each_busy_and_each_frees_its_own(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    start = at(a_day(10), 14)
    for name in ("seat-1", "seat-2"):
        assert deliver(stack, pid, envelope("invitee.created", name, start))[1]["status"] == "BUSY"
    assert deliver(stack, pid, envelope("invitee.canceled", "seat-1", start))[1]["status"] == "FREED"
    assert reasons(stack, pid, sid, start) == ["EXTERNAL"]  # the other invitee still comes
    assert deliver(stack, pid, envelope("invitee.canceled", "seat-2", start))[1]["status"] == "FREED"
    assert reasons(stack, pid, sid, start) == []


def test_a_key_signs_only_for_its_provider_and_a_named_user_only_for_that_user(
    stack: LocalStack, clinic: tuple[str, str]
) -> None:
    pid, sid = clinic
    other = token(stack, "calendly-second-owner", ["providers"])
    status, _, second = call(stack, "POST", "/providers", token=other, body={"name": "Second", "timeZone": "UTC"})
    assert status == 201, second
    path = f"/providers/{second['providerId']}/integrations/calendly"
    user = "https://api.calendly.com/users/SECONDUSER"
    assert (
        call(stack, "PUT", path, token=other, body={"signingKey": "second-providers-own-key", "calendlyUser": user})[0]
        == 200
    )
    start = at(a_day(11), 9)
    body = envelope("invitee.created", "inv-crossed", start)
    # Signed with the first provider's key, delivered to the second's URL: refused.
    assert deliver(stack, second["providerId"], body, signed(stack, body))[0] == 401
    # Signed with the second's key (an OAuth app's key is shared by every user) but another user's event: ignored.
    hosted = json.loads(body)
    hosted["payload"]["scheduled_event"]["event_memberships"] = [{"user": "https://api.calendly.com/users/SOMEONE"}]
    raw = json.dumps(hosted).encode()
    answer = deliver(stack, second["providerId"], raw, signed(stack, raw, key="second-providers-own-key"))
    assert answer == (200, {"status": "IGNORED"})
    hosted["payload"]["scheduled_event"]["event_memberships"] = [{"user": user}]
    raw = json.dumps(hosted).encode()
    status, taken = deliver(stack, second["providerId"], raw, signed(stack, raw, key="second-providers-own-key"))
    assert status == 200 and taken["status"] == "BUSY", taken
    assert reasons(stack, pid, sid, start) == []  # the first provider's calendar is untouched


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
        # We never accept a booking into Calendly's time: ours committed first (their block then a
        # recorded conflict over it), or ours was refused.
        assert (booking_status, block["status"]) in {(201, "CONFLICT"), (409, "BUSY")}, (booking_status, block)
        expected = ["BOOKED", "EXTERNAL"] if booking_status == 201 else ["EXTERNAL"]
        assert reasons(stack, pid, sid, start) == expected
