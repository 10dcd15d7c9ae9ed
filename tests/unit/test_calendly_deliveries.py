"""Calendly's deliveries, pure (services/booking/domain/calendly.py): the signature Calendly documents
(`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`), 3 minutes either way, and what each event changes."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.booking.domain.calendly import (
    InvalidSignatureError,
    InviteeCanceled,
    InviteeCreated,
    change_of,
    verify,
)
from services.common.errors import ValidationFailedError

KEY = "calendly-signing-key-0123456789"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BODY = b'{"event":"invitee.created","payload":{}}'


def header(body: bytes = BODY, key: str = KEY, at: datetime = NOW) -> str:
    stamp = str(int(at.timestamp()))
    return f"t={stamp},v1={hmac.new(key.encode(), f'{stamp}.'.encode() + body, hashlib.sha256).hexdigest()}"


def test_a_delivery_signed_with_the_key_within_three_minutes_is_taken() -> None:
    verify(header(), BODY, KEY, NOW)
    verify(header(at=NOW - timedelta(minutes=3)), BODY, KEY, NOW)
    verify(header(at=NOW + timedelta(minutes=3)), BODY, KEY, NOW)
    verify(header().upper().replace("T=", "t=").replace("V1=", "v1="), BODY, KEY, NOW)  # hex in capitals
    # Several v1 (Calendly's format allows it): one matching is enough.
    stamp, good = header().split(",")
    verify(f"{stamp},v1={'0' * 64},{good}", BODY, KEY, NOW)
    verify(f" {stamp} , {good} ", BODY, KEY, NOW)


@pytest.mark.parametrize(
    "why, sent, body",
    [
        ("missing", None, BODY),
        ("empty", "", BODY),
        ("another key", header(key="another-signing-key-0123"), BODY),
        ("body altered", header(), BODY.replace(b"created", b"canceled")),
        ("a byte appended", header(), BODY + b" "),
        ("three minutes and a second old", header(at=NOW - timedelta(minutes=3, seconds=1)), BODY),
        ("three minutes and a second ahead", header(at=NOW + timedelta(minutes=3, seconds=1)), BODY),
        ("a day old", header(at=NOW - timedelta(days=1)), BODY),
        ("no t", header().split(",")[1], BODY),
        ("no v1", header().split(",")[0], BODY),
        ("t not a number", "t=soon," + header().split(",")[1], BODY),
        ("t negative", "t=-1," + header().split(",")[1], BODY),
        ("t out of range", "t=99999999999999999999," + header().split(",")[1], BODY),
        ("t in non-ASCII digits", "t=١٧٦٤," + header().split(",")[1], BODY),
        ("t of 5000 digits", "t=" + "1" * 5000 + "," + header().split(",")[1], BODY),
        ("t of 13 digits", "t=0" + str(int(NOW.timestamp())).zfill(12) + "," + header().split(",")[1], BODY),
        ("v1 not ASCII", header().split(",")[0] + ",v1=é" + "0" * 63, BODY),
        ("v0 only", header().replace("v1=", "v0="), BODY),
        (
            "signature of the body alone",
            f"t={int(NOW.timestamp())},v1={hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()}",
            BODY,
        ),
    ],
)
def test_anything_else_is_refused(why: str, sent: str | None, body: bytes) -> None:
    with pytest.raises(InvalidSignatureError) as refused:
        verify(sent, body, KEY, NOW)
    assert refused.value.status == 401 and refused.value.code == "INVALID_SIGNATURE", why


def delivery(event: str, **payload: Any) -> bytes:
    invitee = {
        "uri": "https://api.calendly.com/scheduled_events/EV/invitees/INV",
        "email": "someone@example.com",
        "rescheduled": False,
        "scheduled_event": {
            "uri": "https://api.calendly.com/scheduled_events/EV",
            "start_time": "2026-12-07T09:00:00.000000Z",
            "end_time": "2026-12-07T09:45:00.000000Z",
        },
        **payload,
    }
    return json.dumps({"event": event, "created_at": "2026-11-30T12:00:00Z", "payload": invitee}).encode()


def test_a_created_invitee_is_its_time_and_a_cancel_says_whether_it_moved() -> None:
    created = change_of(delivery("invitee.created", old_invitee="https://api.calendly.com/x/invitees/OLD"))
    assert created == InviteeCreated(
        "https://api.calendly.com/scheduled_events/EV/invitees/INV",
        "https://api.calendly.com/scheduled_events/EV",
        datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 7, 9, 45, tzinfo=UTC),
        "https://api.calendly.com/x/invitees/OLD",
    )
    assert created is not None and created.hosts == frozenset()
    hosted = json.loads(delivery("invitee.created"))
    hosted["payload"]["scheduled_event"]["event_memberships"] = [
        {"user": "https://api.calendly.com/users/U1", "user_email": "host@example.com"},
        {"user": 7},
    ]
    named = change_of(json.dumps(hosted).encode())
    assert named is not None and named.hosts == frozenset({"https://api.calendly.com/users/U1"})
    cancelled = change_of(delivery("invitee.canceled", rescheduled=True))
    assert isinstance(cancelled, InviteeCanceled) and cancelled.rescheduled
    plain = change_of(delivery("invitee.canceled", old_invitee=None))
    assert isinstance(plain, InviteeCanceled) and not plain.rescheduled
    # An offset other than Z is the same instant.
    shifted = json.loads(delivery("invitee.created"))
    shifted["payload"]["scheduled_event"]["start_time"] = "2026-12-07T10:00:00+01:00"
    moved = change_of(json.dumps(shifted).encode())
    assert moved is not None and moved.start == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "event",
    [
        "invitee_no_show.created",
        "invitee_no_show.deleted",
        "routing_form_submission.created",
        "event_type.updated",
        None,
        7,
    ],
)
def test_other_events_change_nothing(event: Any) -> None:
    assert change_of(json.dumps({"event": event, "payload": "anything"}).encode()) is None


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.pop("payload"), "body.payload"),
        (lambda d: d["payload"].pop("uri"), "body.payload.uri"),
        (lambda d: d["payload"].update(uri=""), "body.payload.uri"),
        (lambda d: d["payload"].pop("scheduled_event"), "body.payload.scheduled_event"),
        (lambda d: d["payload"]["scheduled_event"].pop("uri"), "body.payload.scheduled_event.uri"),
        (
            lambda d: d["payload"]["scheduled_event"].update(start_time="monday"),
            "body.payload.scheduled_event.start_time",
        ),
        (
            lambda d: d["payload"]["scheduled_event"].update(start_time="2026-12-07T09:00:00"),
            "body.payload.scheduled_event.start_time",
        ),
        (lambda d: d["payload"]["scheduled_event"].update(end_time=None), "body.payload.scheduled_event.end_time"),
        (
            lambda d: d["payload"]["scheduled_event"].update(end_time="2026-12-07T09:00:00Z"),
            "body.payload.scheduled_event.end_time",
        ),
        (
            lambda d: d["payload"]["scheduled_event"].update(end_time="2026-12-08T09:00:01Z"),
            "body.payload.scheduled_event.end_time",
        ),
    ],
)
def test_a_payload_without_what_it_needs_names_the_field(change: Any, field: str) -> None:
    body = json.loads(delivery("invitee.created"))
    change(body)
    with pytest.raises(ValidationFailedError) as refused:
        change_of(json.dumps(body).encode())
    assert [error.field for error in refused.value.errors] == [field]


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        change_of(body)
    assert refused.value.errors[0].field == "body"
