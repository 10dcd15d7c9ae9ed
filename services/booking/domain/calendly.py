"""Calendly's webhook deliveries: whether one is genuine, and what it changes (decision 0030).

Pure: the raw body, the signature header and the stack's clock in; a change, or nothing, out.

Calendly signs `"<t>.<raw body>"` with the subscription's signing key (HMAC-SHA256, hex) and sends
`Calendly-Webhook-Signature: t=<unix seconds>,v1=<hex>`. A delivery is taken when a `v1` matches
(compared in constant time) and `t` is within 3 minutes of our clock either way: a recorded delivery
replayed later is refused, however genuine. Only two events change a provider's calendar:
`invitee.created` (the time is busy) and `invitee.canceled` (it is free again; a reschedule is a
cancel of the old invitee and a create of the new one, in either order). Every other event is
accepted and ignored, so that a subscription to more events does not fail and get disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from msgspec import Struct

from services.common.errors import FieldError, UnauthorizedError, ValidationFailedError

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
TOLERANCE = timedelta(minutes=3)
LONGEST = timedelta(hours=24)  # an external block's busy blocks fit one transaction (49 of 100 items)
MAX_SIGNING_KEY = 256  # characters; Calendly's keys are 43, a key chosen for a PAT subscription may be longer
MIN_SIGNING_KEY = 16
CALENDLY_USER = r"^https://api\.calendly\.com/users/[A-Za-z0-9_-]{1,64}$"


class InvalidSignatureError(UnauthorizedError):
    code = "INVALID_SIGNATURE"


class InviteeCreated(Struct, frozen=True):
    invitee_uri: str
    event_uri: str
    start: datetime
    end: datetime
    rescheduled_from: str | None  # the invitee this one replaces (`old_invitee`), when a reschedule
    hosts: frozenset[str] = frozenset()  # the Calendly users whose event it is (`event_memberships[].user`)


class InviteeCanceled(Struct, frozen=True):
    invitee_uri: str
    event_uri: str
    start: datetime
    end: datetime
    rescheduled: bool  # cancelled because it moved: its `invitee.created` comes too
    hosts: frozenset[str] = frozenset()


Change = InviteeCreated | InviteeCanceled


def verify(header: str | None, body: bytes, signing_key: str, now: datetime) -> None:
    """Raise InvalidSignatureError unless `body` was signed with `signing_key` within TOLERANCE of `now`."""
    if not header:
        raise InvalidSignatureError(f"The {SIGNATURE_HEADER} header is missing.")
    stamp, signatures = "", []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            stamp = value
        elif name == "v1":
            signatures.append(value.lower())
    # At most 12 digits: Python refuses to read a number of thousands (and this is anyone's input).
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not signatures:
        raise InvalidSignatureError(f"The {SIGNATURE_HEADER} header is not t=<unix seconds>,v1=<hex>.")
    signed_at = datetime.fromtimestamp(min(int(stamp), 253_402_300_799), UTC)  # at most 9999-12-31
    if abs(now - signed_at) > TOLERANCE:
        raise InvalidSignatureError("The signature's time is more than 3 minutes from now: a replay, or a clock off.")
    expected = hmac.new(signing_key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    # Every candidate is compared, as bytes (any text may come), in constant time: how many match,
    # and where, leaks nothing.
    if not sum(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise InvalidSignatureError("The signature does not match the body and the provider's signing key.")


def change_of(body: bytes) -> Change | None:
    """What a verified delivery changes: None for an event that changes no calendar."""
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ValidationFailedError("The body is not JSON.", [FieldError("body", "not JSON")]) from None
    if not isinstance(envelope, dict):
        raise ValidationFailedError("The body is not a JSON object.", [FieldError("body", "not an object")])
    event = envelope.get("event")
    if event not in {"invitee.created", "invitee.canceled"}:
        return None
    payload = _object(envelope, "payload", "body.payload")
    scheduled = _object(payload, "scheduled_event", "body.payload.scheduled_event")
    invitee_uri = _text(payload, "uri", "body.payload.uri")
    event_uri = _text(scheduled, "uri", "body.payload.scheduled_event.uri")
    start = _instant(scheduled, "start_time", "body.payload.scheduled_event.start_time")
    end = _instant(scheduled, "end_time", "body.payload.scheduled_event.end_time")
    if not start < end <= start + LONGEST:
        raise ValidationFailedError(
            "The event must end after it starts, and last at most 24 hours.",
            [FieldError("body.payload.scheduled_event.end_time", "not after start_time, or more than 24 h after it")],
        )
    memberships = scheduled.get("event_memberships")
    hosts = frozenset(
        str(member["user"])
        for member in (memberships if isinstance(memberships, list) else [])
        if isinstance(member, dict) and isinstance(member.get("user"), str)
    )
    if event == "invitee.created":
        old = payload.get("old_invitee")
        moved_from = old if isinstance(old, str) and old else None
        return InviteeCreated(invitee_uri, event_uri, start, end, moved_from, hosts)
    return InviteeCanceled(invitee_uri, event_uri, start, end, payload.get("rescheduled") is True, hosts)


def _object(values: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    found = values.get(name)
    if not isinstance(found, dict):
        raise ValidationFailedError(f"{where} is missing.", [FieldError(where, "required object")])
    return found


def _text(values: dict[str, Any], name: str, where: str) -> str:
    found = values.get(name)
    if not isinstance(found, str) or not 0 < len(found) <= 512:
        raise ValidationFailedError(f"{where} is missing.", [FieldError(where, "required, at most 512 characters")])
    return found


def _instant(values: dict[str, Any], name: str, where: str) -> datetime:
    found = values.get(name)
    try:
        instant = datetime.fromisoformat(found) if isinstance(found, str) else None
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise ValidationFailedError(
            f"{where} is not an instant.", [FieldError(where, "an ISO 8601 instant with its offset")]
        )
    return instant.astimezone(UTC)
