"""Webhooks through the local stack (decision 0029), to receivers on loopback started here.

Each delivery's signature is checked with `hmac` by hand, not with the library that made it. A 500
then a 200 is two attempts with one `webhook-id`, the second once the stack's clock has moved past
its retry; a 410 disables the subscription; a receiver slower than 5 s has failed; a rotation signs
with both secrets; a redirect is a failure and is not followed; a replay sends the same id again; a
deleted subscription gets nothing. The API refuses unsafe URLs naming the field, and shows each
caller only the subscriptions they manage."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.stack import LocalStack
from tests.integration.conftest import call, eventually, token
from tests.integration.test_booking_api import WEEKDAYS, ZONE, book, future_day, make_provider
from tests.integration.test_tracing import header_fields

pytestmark = pytest.mark.slow

OWNER = "webhook-owner"
ZIPPED = gzip.compress(bytes(50_000_000), compresslevel=9)
OPEN = {day: [{"start": "08:00", "end": "18:00"}] for day in WEEKDAYS}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receivers:
    """Receivers at `/<name>`: each answers its script in turn (status, seconds to wait), then 200. A
    receiver whose name starts with `trickle` sends its status at once, then its body a byte a second."""

    port: int = 0
    scripts: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    cut_after: dict[str, float] = field(default_factory=dict)  # a trickle: seconds until the client left
    seen: dict[str, list[Received]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def got(self, name: str) -> list[Received]:
        with self.lock:
            return list(self.seen.get(name, []))


@contextmanager
def receiving() -> Iterator[Receivers]:
    """Receivers on a loopback port of their own, for as long as the block runs."""
    found = Receivers()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            name = self.path.strip("/")
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with found.lock:
                found.seen.setdefault(name, []).append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                script = found.scripts.get(name) or []
                status, wait = script.pop(0) if script else (200, 0.0)
            time.sleep(wait)
            self.send_response(status)
            if status in {301, 302, 307, 308}:
                self.send_header("Location", found.url("redirected"))
            trickling = name.startswith("trickle") and len(found.got(name)) == 1
            body = b"0123456789" if trickling else b"ok"
            if name.startswith("zipped"):  # 50 MB of zeros, gzipped to about 50 KB: never inflated
                body = ZIPPED
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not trickling:
                self.wfile.write(body)
                return
            started = time.monotonic()
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1.0)
            except OSError:  # the client hung up: when is what the test checks
                found.cut_after[name] = time.monotonic() - started

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def receivers() -> Iterator[Receivers]:
    with receiving() as found:
        yield found


@pytest.fixture(scope="module")
def clinic(stack: LocalStack) -> tuple[str, str]:
    pid, (sid,) = make_provider(stack, OWNER, "Webhook Clinic", OPEN, [{"name": "Visit", "durationMinutes": 30}])
    return pid, sid


def at(hour: int, minute: int = 0, weeks: int = 5) -> str:
    day = future_day(weeks)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).isoformat()


def subscribe(stack: LocalStack, url: str, events: list[str], provider_id: str | None, who: str = OWNER) -> Any:
    groups = ["admins"] if who == "webhook-admin" else ["providers"]
    body: dict[str, Any] = {"url": url, "events": events}
    if provider_id is not None:
        body["providerId"] = provider_id
    status, headers, made = call(stack, "POST", "/webhooks", token=token(stack, who, groups), body=body)
    assert status == 201 and headers.get("Cache-Control") == "no-store", made
    return made


def signatures_valid(secret: str, received: Received) -> list[bool]:
    """Standard Webhooks' v1, by hand: HMAC-SHA256 of `id.timestamp.body` keyed with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return [
        version == "v1" and hmac.compare_digest(value, expected)
        for version, value in (entry.split(",", 1) for entry in received.headers["webhook-signature"].split(" "))
    ]


def deliveries(stack: LocalStack, webhook_id: str, who: str = OWNER) -> list[dict[str, Any]]:
    status, _, page = call(stack, "GET", f"/webhooks/{webhook_id}/deliveries", token=token(stack, who, ["providers"]))
    assert status == 200, page
    return list(page["items"])


def advance(stack: LocalStack, seconds: int) -> None:
    assert call(stack, "POST", "/_local/clock", body={"advanceSeconds": seconds})[0] == 200


def test_a_500_then_a_200_is_two_signed_attempts_with_one_id(
    stack: LocalStack, clinic: tuple[str, str], receivers: Receivers
) -> None:
    pid, sid = clinic
    receivers.scripts["flaky"] = [(500, 0.0)]
    made = subscribe(stack, receivers.url("flaky"), ["booking.created"], pid)
    assert made["secret"].startswith("whsec_") and made["status"] == "ACTIVE"
    listed = call(stack, "GET", "/webhooks", token=token(stack, OWNER, ["providers"]))[2]["items"]
    assert [w["webhookId"] for w in listed] == [made["webhookId"]] and "whsec_" not in json.dumps(listed)

    _, booking_headers, booked = book(stack, token(stack, "hook-customer", ["customers"]), pid, sid, at(9))
    assert eventually(lambda: len(receivers.got("flaky")) == 1), receivers.seen
    first = receivers.got("flaky")[0]
    assert signatures_valid(made["secret"], first) == [True]
    payload = json.loads(first.body)
    assert set(payload) == {"type", "timestamp", "data"} and payload["type"] == "booking.created"
    assert payload["data"]["bookingId"] == booked["bookingId"] and payload["data"]["version"] == 1
    assert first.headers["content-type"] == "application/json"
    # Its retry is due 5 s after the attempt must have ended (12 s on): not yet, until the clock moves.
    assert len(receivers.got("flaky")) == 1
    advance(stack, 65)  # past it, at EventBridge Scheduler's minute
    assert eventually(lambda: len(receivers.got("flaky")) == 2), receivers.seen
    second = receivers.got("flaky")[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"] and second.body == first.body
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) >= 5
    assert signatures_valid(made["secret"], second) == [True]
    (done,) = eventually(lambda: [d for d in deliveries(stack, made["webhookId"]) if d["status"] == "DELIVERED"])
    assert done["attempts"] == 2 and done["lastStatus"] == 200 and done["lastResponse"] == "ok", done

    # The first attempt is in the trace of the request that made the booking; the retry, in a trace
    # of its own (EventBridge Scheduler starts one), links back to it.
    xray = stack.xray
    assert xray is not None
    root = header_fields(booking_headers["X-Amzn-Trace-Id"])["Root"]
    assert eventually(lambda: [s for s in xray.trace(root) if s["name"] == "webhooks.attempt"])

    def retried() -> list[dict[str, Any]]:
        otel = [(span, span.get("metadata", {}).get("otel", {})) for span in xray.documents()]
        return [
            span
            for span, about in otel
            if about.get("attributes", {}).get("appointments.webhookId") == made["webhookId"]
            and root in [link["trace_id"] for link in about.get("links", [])]
        ]

    retries = eventually(retried)
    assert retries and all(span["trace_id"] != root for span in retries), retries

    # A replay: the same id once more, on the schedule.
    path = f"/webhooks/{made['webhookId']}/deliveries/{done['deliveryId']}/redeliver"
    status, _, reopened = call(stack, "POST", path, token=token(stack, OWNER, ["providers"]))
    assert status == 202 and reopened["status"] == "PENDING", reopened
    advance(stack, 65)
    assert eventually(lambda: len(receivers.got("flaky")) == 3), receivers.seen
    assert receivers.got("flaky")[2].headers["webhook-id"] == first.headers["webhook-id"]


def test_a_410_disables_the_subscription_and_a_slow_receiver_has_failed(
    stack: LocalStack, clinic: tuple[str, str], receivers: Receivers
) -> None:
    pid, sid = clinic
    receivers.scripts["gone"] = [(410, 0.0)]
    gone = subscribe(stack, receivers.url("gone"), ["booking.created"], pid)
    # A 200 at once, then its body a byte a second for 10 s: cut off at 5 s, a failed attempt.
    slow = subscribe(stack, receivers.url("trickle"), ["booking.created"], pid)
    book(stack, token(stack, "hook-customer", ["customers"]), pid, sid, at(10))
    assert eventually(lambda: len(receivers.got("gone")) == 1 and len(receivers.got("trickle")) == 1)

    def status_of(webhook_id: str) -> str:
        items = call(stack, "GET", "/webhooks", token=token(stack, OWNER, ["providers"]))[2]["items"]
        return next(w["status"] for w in items if w["webhookId"] == webhook_id)

    assert eventually(lambda: status_of(gone["webhookId"]) == "DISABLED")
    assert [d["status"] for d in deliveries(stack, gone["webhookId"])] == ["FAILED"]
    # Cut off at the deadline (a byte a second: the write after it fails), not when the body was done.
    # (the server notices a write or two after the cut: under the 10 s its body takes, not to the 5 s)
    assert eventually(lambda: "trickle" in receivers.cut_after) and receivers.cut_after["trickle"] < 9
    advance(stack, 65)  # the retry (over 5 s is a failure): the same message again, answered at once
    assert eventually(lambda: len(receivers.got("trickle")) == 2), receivers.seen
    first, second = receivers.got("trickle")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    (retried,) = eventually(lambda: [d for d in deliveries(stack, slow["webhookId"]) if d["status"] == "DELIVERED"])
    assert (retried["attempts"], retried["deliveryId"]) == (2, first.headers["webhook-id"])

    book(stack, token(stack, "hook-customer", ["customers"]), pid, sid, at(11))
    assert eventually(lambda: len(receivers.got("trickle")) == 3)  # the next event came
    assert len(receivers.got("gone")) == 1  # disabled: nothing more


def test_a_rotation_signs_with_both_secrets_and_a_redirect_is_a_failure_not_followed(
    stack: LocalStack, clinic: tuple[str, str], receivers: Receivers
) -> None:
    pid, sid = clinic
    made = subscribe(stack, receivers.url("rotating"), ["booking.cancelled"], pid)
    status, _, rotated = call(
        stack, "POST", f"/webhooks/{made['webhookId']}/secret", token=token(stack, OWNER, ["providers"])
    )
    assert status == 200 and rotated["secret"] != made["secret"], rotated
    assert [bool(s.get("retiresAt")) for s in rotated["secrets"]] == [True, False]
    receivers.scripts["moved"] = [(302, 0.0), (302, 0.0)]  # its retry too, should the clock reach it
    moved = subscribe(stack, receivers.url("moved"), ["booking.cancelled"], pid)
    zipped = subscribe(stack, receivers.url("zipped"), ["booking.cancelled"], pid)

    customer = token(stack, "hook-customer", ["customers"])
    booked = book(stack, customer, pid, sid, at(12))[2]
    assert call(stack, "POST", f"/bookings/{booked['bookingId']}/cancel", token=customer, body={})[0] == 200
    assert eventually(lambda: len(receivers.got("rotating")) == 1 and len(receivers.got("moved")) == 1)
    received = receivers.got("rotating")[0]
    old, new = (signatures_valid(secret, received) for secret in (made["secret"], rotated["secret"]))
    assert old == [True, False] and new == [False, True]  # one signature per secret, in order
    (redirected,) = eventually(lambda: [d for d in deliveries(stack, moved["webhookId"]) if d["lastStatus"] == 302])
    assert redirected["status"] == "PENDING" and redirected["attempts"] in {1, 2}, redirected
    assert receivers.got("redirected") == []
    # A gzipped answer is kept as it came, its start only: nothing inflated, nothing read past it.
    (unzipped,) = eventually(lambda: [d for d in deliveries(stack, zipped["webhookId"]) if d["status"] == "DELIVERED"])
    assert unzipped["lastResponse"] and len(unzipped["lastResponse"]) <= 200, unzipped


def test_a_deleted_subscription_gets_nothing_and_only_its_managers_see_it(
    stack: LocalStack, clinic: tuple[str, str], receivers: Receivers
) -> None:
    pid, sid = clinic
    made = subscribe(stack, receivers.url("deleted"), ["booking.created"], pid)
    control = subscribe(stack, receivers.url("control"), ["booking.created"], pid)
    stranger = token(stack, "hook-stranger", ["providers"])
    assert call(stack, "GET", "/webhooks", token=stranger)[2]["items"] == []
    path = f"/webhooks/{made['webhookId']}"
    assert call(stack, "DELETE", path, token=stranger)[0] == 404
    assert call(stack, "GET", f"{path}/deliveries", token=stranger)[0] == 404
    assert call(stack, "GET", "/webhooks", token=token(stack, "hook-customer", ["customers"]))[0] == 403
    admin = token(stack, "webhook-admin", ["admins"])
    assert made["webhookId"] in {w["webhookId"] for w in call(stack, "GET", "/webhooks", token=admin)[2]["items"]}
    assert call(stack, "DELETE", path, token=token(stack, OWNER, ["providers"]))[0] == 204
    book(stack, token(stack, "hook-customer", ["customers"]), pid, sid, at(13))
    # the same event reached the control subscription: it would have reached the deleted one by now
    assert eventually(lambda: len(receivers.got("control")) == 1) and control["webhookId"]
    assert receivers.got("deleted") == []


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",  # the instance metadata service
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/hook",  # the VPC
        "https://192.168.1.1/hook",
        "https://[fd00:ec2::254]/hook",  # the metadata service's IPv6 address
        "https://100.64.0.1/hook",  # shared address space
        "ftp://example.com/hook",
        "https://user:pw@127.0.0.1/hook",
    ],
)
def test_unsafe_urls_are_refused_naming_the_field(stack: LocalStack, clinic: tuple[str, str], url: str) -> None:
    pid, _ = clinic
    body = {"url": url, "events": ["booking.created"], "providerId": pid}
    status, _, problem = call(stack, "POST", "/webhooks", token=token(stack, OWNER, ["providers"]), body=body)
    if url.startswith("ftp:"):  # no http(s) URL at all: the document's pattern, the gateway's validator
        assert status == 400 and problem["code"] == "VALIDATION_FAILED", problem
        return
    assert status == 422 and problem["code"] == "UNSAFE_URL", problem
    assert problem["errors"][0]["field"] == "body.url", problem


def test_a_dns_name_is_judged_by_what_the_systems_resolver_answers() -> None:
    """With the machine's own resolver (/etc/hosts here): `localhost` is loopback, refused when
    deployed and allowed only where the stage allows loopback, as its address would be."""
    from services.common.webhook_destinations import UnsafeDestinationError, check_destination

    for url in ("https://localhost/hook", "https://LOCALHOST:8443/hook"):
        with pytest.raises(UnsafeDestinationError, match="not public"):
            check_destination(url)
        assert all(a.startswith("127.") or a == "::1" for a in check_destination(url, allow_loopback=True).addresses)
