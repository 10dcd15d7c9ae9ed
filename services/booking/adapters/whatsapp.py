"""WhatsApp template messages out (decision 0031): AWS End User Messaging Social
(`socialmessaging` `SendWhatsAppMessage`) when deployed, a local outbox file on the local stack.

**Retries.** A message is sent at most once (`domain/notifications.py` claims it first), and
`SendWhatsAppMessage` takes no idempotency token. So only a request that certainly did nothing is
sent again: a throttled one (429 `ThrottledRequestException`) or one that never reached AWS (no
connection). Those are retried here with exponential backoff and full jitter, 4 attempts in all, and
botocore's own retries are off (its standard mode would also resend after a read timeout or a 500,
either of which may follow a message WhatsApp already has). Anything else ends the message:
- refused for good (a number not on WhatsApp, a template not approved: 4xx) → FAILED, not retried;
- a 5xx, a read timeout → FAILED as uncertain: it may have been delivered, and a second reminder is
  worse than a missing one. Both are counted and alarmed (docs/runbooks/notifications.md).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, HTTPClientError

from services.booking.domain.notifications import Message, Outcome, Sent

ATTEMPTS = 4
BASE_DELAY = 0.2  # seconds; doubled each attempt, full jitter (at most 0.2, 0.4, 0.8 s)
# Certainly not processed: throttled before anything was done, or never sent.
RETRYABLE_CODES = frozenset({"ThrottledRequestException"})
UNSENT = (EndpointConnectionError, ConnectTimeoutError)


def template_message(message: Message) -> dict[str, Any]:
    """The WhatsApp Cloud API's message object for a template with body parameters, which
    `SendWhatsAppMessage` passes to Meta as it is."""
    return {
        "messaging_product": "whatsapp",
        "to": message.to,
        "type": "template",
        "template": {
            "name": message.template,
            "language": {"code": message.language},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": value} for value in message.parameters]}
            ],
        },
    }


class SocialMessagingChannel:
    def __init__(
        self,
        client: Any,  # a socialmessaging client, made with botocore's retries off (see above)
        phone_number_id: str,
        meta_api_version: str = "v20.0",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.phone_number_id, self.meta_api_version, self.sleep = (
            client,
            phone_number_id,
            meta_api_version,
            sleep,
        )

    def send(self, message: Message) -> Sent:
        body = json.dumps(template_message(message), separators=(",", ":")).encode()
        for attempt in range(ATTEMPTS):
            try:
                answer = self.client.send_whatsapp_message(
                    originationPhoneNumberId=self.phone_number_id, message=body, metaApiVersion=self.meta_api_version
                )
                return Sent(Outcome.SENT, reference=str(answer.get("messageId") or ""))
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
                if code not in RETRYABLE_CODES or attempt == ATTEMPTS - 1:
                    why = "refused" if 400 <= status < 500 else "uncertain"
                    return Sent(Outcome.FAILED, error=f"{why}: {code or status} after {attempt + 1} attempt(s)")
            except UNSENT as error:
                if attempt == ATTEMPTS - 1:
                    return Sent(Outcome.FAILED, error=f"unreachable: {type(error).__name__} after {ATTEMPTS} attempts")
            except HTTPClientError as error:  # a read timeout, an answer cut off: it may have been sent
                return Sent(Outcome.FAILED, error=f"uncertain: {type(error).__name__}")
            self.sleep(random.uniform(0, BASE_DELAY * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover - every attempt returns or sleeps


class OutboxChannel:
    """The local stack's channel: what would have been sent, one JSON line each in a file the stack
    serves at `GET /_local/outbox` (no token, no number of ours needed)."""

    _lock = threading.Lock()

    def __init__(self, path: Path, clock: Callable[[], datetime]) -> None:
        self.path, self.clock = path, clock

    def send(self, message: Message) -> Sent:
        entry = {
            "channel": "whatsapp",
            "to": message.to,
            "template": message.template,
            "language": message.language,
            "parameters": list(message.parameters),
            "bookingId": message.booking_id,
            "version": message.version,
            "kind": message.kind.value,
            "sentAt": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "message": template_message(message),
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(line)  # one write of one line: lines from several processes never interleave
        return Sent(Outcome.SENT, reference=f"outbox-{message.key}")


class UnconfiguredChannel:
    """A stage with no WhatsApp number configured (`WhatsAppPhoneNumberId` empty): nothing is sent."""

    def send(self, message: Message) -> Sent:
        return Sent(Outcome.SKIPPED, error="no WhatsApp number configured for this stage")
