"""The WhatsApp adapter against a stand-in of AWS End User Messaging Social's HTTP API on loopback
(services/booking/adapters/whatsapp.py): the real boto3 client, its real request (REST-JSON
`POST /v1/whatsapp/send`, the message as base64 of WhatsApp's own JSON), and the API's real error
shapes (`x-amzn-errortype`, the codes and statuses of its service model).

What is resent and what is not: a throttled request (429) is, with backoff, until it goes; a
refusal (400) is not; a 500 or an answer that does not come in time is not either (WhatsApp may have
the message: a second reminder is worse than none); a stage where nothing answers is tried 4 times,
then failed."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from services.booking.adapters.whatsapp import ATTEMPTS, SocialMessagingChannel
from services.booking.domain.notifications import Kind, Message, Outcome
from services.common.aws import SOCIAL_MESSAGING_CONFIG

PHONE = "phone-number-id-0123456789abcdef0123456789abcdef"
MESSAGE = Message(
    "bkg_1", 3, Kind.REMINDER, "+4915112345678", "appointment_reminder", "de", ("Praxis", "Check-up", "Mon 7 Dec")
)


@dataclass
class Api:
    """Answers its script in turn (status, error code), then 200 with a message id."""

    port: int = 0
    script: list[tuple[int, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer
    seen: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def social_messaging() -> Iterator[Api]:
    api = Api()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            api.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status, code = api.script.pop(0) if api.script else (200, "")
            time.sleep(api.delay)
            answer = (
                {"messageId": f"msg-{len(api.seen)}"} if status == 200 else {"message": f"{code} from the stand-in"}
            )
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if code:
                self.send_header("x-amzn-errortype", f"{code}:http://internal.amazon.com/coral/")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def channel(endpoint: str, slept: list[float], read_timeout: float | None = None) -> SocialMessagingChannel:
    config = (
        SOCIAL_MESSAGING_CONFIG.merge(Config(read_timeout=read_timeout)) if read_timeout else SOCIAL_MESSAGING_CONFIG
    )
    client = boto3.client(
        "socialmessaging",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )
    return SocialMessagingChannel(client, PHONE, sleep=slept.append)


def test_a_template_message_is_sent_as_the_api_and_whatsapp_expect_it() -> None:
    slept: list[float] = []
    with social_messaging() as api:
        sent = channel(f"http://127.0.0.1:{api.port}", slept).send(MESSAGE)
    assert sent.outcome is Outcome.SENT and sent.reference == "msg-1" and slept == []
    (request,) = api.seen
    assert request["path"] == "/v1/whatsapp/send"
    assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")  # signed: IAM, no token
    assert request["body"]["originationPhoneNumberId"] == PHONE and request["body"]["metaApiVersion"] == "v20.0"
    whatsapp = json.loads(base64.b64decode(request["body"]["message"]))
    assert whatsapp == {
        "messaging_product": "whatsapp",
        "to": "+4915112345678",
        "type": "template",
        "template": {
            "name": "appointment_reminder",
            "language": {"code": "de"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Praxis"},
                        {"type": "text", "text": "Check-up"},
                        {"type": "text", "text": "Mon 7 Dec"},
                    ],
                }
            ],
        },
    }


def test_throttling_is_retried_with_backoff_until_it_goes() -> None:
    slept: list[float] = []
    with social_messaging() as api:
        api.script = [(429, "ThrottledRequestException"), (429, "ThrottledRequestException")]
        sent = channel(f"http://127.0.0.1:{api.port}", slept).send(MESSAGE)
    assert sent.outcome is Outcome.SENT and sent.reference == "msg-3" and len(api.seen) == 3
    assert len(slept) == 2 and 0 <= slept[0] <= 0.2 and 0 <= slept[1] <= 0.4  # full jitter, doubling


def test_throttling_that_never_ends_is_a_failure_after_four_attempts() -> None:
    slept: list[float] = []
    with social_messaging() as api:
        api.script = [(429, "ThrottledRequestException")] * 10
        sent = channel(f"http://127.0.0.1:{api.port}", slept).send(MESSAGE)
    assert sent.outcome is Outcome.FAILED and len(api.seen) == ATTEMPTS == 4 and len(slept) == 3
    assert sent.error == "refused: ThrottledRequestException after 4 attempt(s)"


@pytest.mark.parametrize(
    "status, code, why",
    [
        (400, "ValidationException", "refused"),  # e.g. a number that is not on WhatsApp
        (400, "InvalidParametersException", "refused"),  # e.g. a template not approved in that language
        (403, "AccessDeniedException", "refused"),
        (404, "ResourceNotFoundException", "refused"),  # the phone number id is gone
        (500, "InternalServiceException", "uncertain"),
        (502, "DependencyException", "uncertain"),  # Meta's side
    ],
)
def test_anything_else_fails_at_once_and_is_never_sent_again(status: int, code: str, why: str) -> None:
    slept: list[float] = []
    with social_messaging() as api:
        api.script = [(status, code)]
        sent = channel(f"http://127.0.0.1:{api.port}", slept).send(MESSAGE)
    assert sent.outcome is Outcome.FAILED and len(api.seen) == 1 and slept == []
    assert sent.error == f"{why}: {code} after 1 attempt(s)"


def test_an_answer_that_does_not_come_in_time_is_uncertain_and_never_sent_again() -> None:
    slept: list[float] = []
    with social_messaging() as api:
        api.delay = 1.5  # past the client's read timeout: WhatsApp may well have the message by then
        sent = channel(f"http://127.0.0.1:{api.port}", slept, read_timeout=0.5).send(MESSAGE)
        time.sleep(1.2)  # let the stand-in finish answering before it stops
    assert sent.outcome is Outcome.FAILED and sent.error == "uncertain: ReadTimeoutError"
    assert len(api.seen) == 1 and slept == []


def test_an_api_that_cannot_be_reached_is_tried_four_times() -> None:
    with social_messaging() as api:
        port = api.port  # closed once the block ends: nothing listens there
    slept: list[float] = []
    sent = channel(f"http://127.0.0.1:{port}", slept).send(MESSAGE)
    assert sent.outcome is Outcome.FAILED and sent.error is not None and sent.error.startswith("unreachable:")
    assert len(slept) == ATTEMPTS - 1
